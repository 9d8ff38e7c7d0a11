"""The first sync of camera JPEGs with web renditions on, beside the same sync with them off
and the rendering alone; then the no-op of each (issue 26's targets).

    python bench/renditions_sync.py                       # 200 photos of 24 MP, 3 repeats
    python bench/renditions_sync.py --photos 40 --repeat 1 --out /tmp/r.md
    python bench/renditions_sync.py --rtt-ms 50 --uplink-mbit 100 --out /tmp/far.md  # a far bucket

The photos are real 6000 x 4000 JPEGs of 6 to 8 MB (gradients, shapes and grain, EXIF
orientation on every third), made once under --workdir. Each contender is a whole process
against bench/s3server.py (moto, counting requests), measured by bench/measure.py:

- `sync, renditions off`: `manage.py sync_albums --discover` with ALBUMS_RENDITIONS=0;
- `render alone`: this script's `--render-alone`, which renders every photo with
  albums.renditions.render on 2 threads (the cores) and sends nothing;
- `sync, renditions on`: the same sync with ALBUMS_RENDITIONS=1 (the default).

The target: the sync with renditions on takes at most 1.15 x the slower of the other two (the
uploads and the renders overlap), and its no-op sends the same requests as without them.

On loopback both halves are this machine's CPU (moto shares the two cores), so no overlap can
beat the sum of their CPU time over the cores: the report gives that floor. `--rtt-ms` and
`--uplink-mbit` put bench/wanproxy.py between the syncs and the server, as for a bucket at
the other end of a home uplink, where the uploads wait on the link and the renders on the CPU.
"""

import argparse
import os
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

TARGET = 1.15
SIZE = (6000, 4000)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/photosite-renditions-bench"))  # noqa: S108
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS-renditions-sync.md")
    parser.add_argument("--rtt-ms", type=float, default=0, help="round trip through wanproxy")
    parser.add_argument("--uplink-mbit", type=float, help="uplink cap through wanproxy")
    parser.add_argument("--render-alone", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# The photos ----------------------------------------------------------------------------------


def camera_jpeg(path: Path, seed: int) -> None:
    """A 24 MP JPEG with a camera's entropy: a gradient, shapes, coarse and fine grain."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)  # noqa: S311 - shapes for a test image
    small = Image.linear_gradient("L").resize((750, 500)).convert("RGB")
    draw = ImageDraw.Draw(small)
    for _ in range(40):
        x, y = rng.randrange(750), rng.randrange(500)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x, y, x + rng.randrange(20, 200), y + rng.randrange(20, 200)), colour)
    image = small.resize(SIZE, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(2))
    grain = Image.effect_noise(SIZE, 18 + seed % 5).convert("RGB")
    image = Image.blend(image, grain, 0.3)
    exif = Image.Exif()
    exif[0x0112] = 6 if seed % 3 == 0 else 1
    exif[0x0110] = "Bench Camera"
    image.save(path, "JPEG", quality=92, exif=exif.tobytes())
    stamp = 1_700_000_000_000_000_000 + seed
    os.utime(path, ns=(stamp, stamp))


def ensure_photos(workdir: Path, count: int) -> Path:
    root = workdir / f"photos-{count}"
    folder = root / "camera"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not (folder / f"IMG_{i + 1:04d}.jpg").exists()]
    if missing:
        print(f"making {len(missing)} camera JPEGs under {folder} ...", flush=True)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: camera_jpeg(folder / f"IMG_{i + 1:04d}.jpg", i), missing))
    return root


# Rendering alone (a process of its own) ------------------------------------------------------


def render_alone(folder: Path) -> None:
    from albums.renditions import RenditionSpec, render

    spec = RenditionSpec((400, 2048), "webp", 80)
    files = sorted(str(path) for path in folder.rglob("*.jpg"))
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda p: render(p, spec, content_type="image/jpeg"), files))
    print(f"rendered {len(done)} photos")


# The run --------------------------------------------------------------------------------------


def server_cpu(pid: int) -> float:
    """User + system seconds of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.render_alone:
        render_alone(args.render_alone)
        return
    from album import Album
    from contenders import Contender, sync_albums
    from measure import Server
    from run import Bench

    class RenditionsBench(Bench):
        """bench/run.py's runs, with the renditions' keys allowed beside the photos."""

        def check_bucket(self):
            stored = self.keys_in_bucket()
            photos = {self.album.prefix + name for name in self.album.sizes}
            return None if photos <= stored.keys() else "photos missing from the bucket"

        def measure(self, contender, phase, repeat):
            """The run, and the CPU the server spent on it (it shares the 2 cores)."""
            before = server_cpu(self.server.process.pid)
            sample = super().measure(contender, phase, repeat)
            sample.server_cpu = server_cpu(self.server.process.pid) - before
            return sample

    started = time.time()
    (args.workdir / "on").mkdir(parents=True, exist_ok=True)
    root = ensure_photos(args.workdir, args.photos)
    folder = root / "camera"
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    album = Album(root=root, folder=folder, prefix="albums/camera/", sizes=sizes)
    python = sys.executable
    server = Server(python, BENCH / "s3server.py", args.workdir / "server.log")
    proxy = None
    endpoint = server.url
    if args.rtt_ms or args.uplink_mbit:
        from wanproxy import WanProxy

        proxy = WanProxy(
            f"127.0.0.1:{server.port}", rtt_ms=args.rtt_ms, uplink_mbit=args.uplink_mbit
        )
        endpoint = proxy.url
    try:
        off = sync_albums(python, endpoint, args.workdir, album, args.workers)
        off.name, off.env = "sync, renditions off", off.env | {"ALBUMS_RENDITIONS": "0"}
        on = sync_albums(python, endpoint, args.workdir / "on", album, args.workers)
        on.name, on.env = "sync, renditions on", on.env | {"ALBUMS_RENDITIONS": "1"}
        alone = Contender(
            "render alone",
            [python, str(BENCH / "renditions_sync.py"), "--render-alone", str(folder)],
            [python, "-c", "pass"],  # nothing to do again: a process's start
            off.env,
        )
        results = RenditionsBench(args, album, server).run([off, alone, on])
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    text = report(args, results, sizes, time.time() - started)
    args.out.write_text(text)
    print(text)


def report(args, results, sizes, elapsed) -> str:
    def med(name, phase, attr):
        return results[name][phase].median(attr)

    def server(name, phase):
        return statistics.median(s.server_cpu for s in results[name][phase].samples)

    names = list(results)
    lines = [
        "# Benchmark results: the first sync of camera JPEGs with web renditions",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python bench/renditions_sync.py {' '.join(sys.argv[1:])}`, "
        f"{elapsed / 60:.1f} min.",
        "",
        f"One album of {len(sizes)} JPEGs of 6000 x 4000 pixels, "
        f"{min(sizes.values()) / 1e6:.1f} to {max(sizes.values()) / 1e6:.1f} MB "
        f"({sum(sizes.values()) / 2**20:.0f} MiB); renditions 400 and 2048 px, WebP q80. "
        f"{args.repeat} interleaved repeats, medians; {args.workers} workers. Server: moto "
        f"in its own process (bench/s3server.py), {_link(args)}.",
        "",
        "| contender | run | wall | CPU | server's CPU | requests | by operation | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for phase in ("initial", "noop"):
            samples = results[name][phase].samples
            last = samples[-1]
            ops = ", ".join(f"{op} {n}" for op, n in sorted(last.requests.items()))
            lines.append(
                f"| {name} | {phase} | {med(name, phase, 'wall'):.2f} s | "
                f"{med(name, phase, 'cpu'):.2f} s | {server(name, phase):.2f} s | "
                f"{last.request_total} | {ops} | "
                f"{med(name, phase, 'rss_mib'):.0f} MiB |"
            )

    slower = max(med(names[0], "initial", "wall"), med(names[1], "initial", "wall"))
    on = med(names[2], "initial", "wall")
    ratio = on / slower
    noop_same = (
        results[names[0]]["noop"].samples[-1].requests
        == results[names[2]]["noop"].samples[-1].requests
    )
    cores = os.cpu_count() or 1
    work = (
        med(names[0], "initial", "cpu")
        + server(names[0], "initial")
        + med(names[1], "initial", "cpu")
    )
    cpu_floor = work / cores
    # On a capped uplink the photos' bytes alone take this long, whatever the CPU does.
    link = sum(sizes.values()) * 8 / (args.uplink_mbit * 1e6) if args.uplink_mbit else 0.0
    floor = max(cpu_floor, link)
    used = med(names[2], "initial", "cpu") + server(names[2], "initial")
    lines += [
        "",
        f"- The CPU both need, added (the sync without renditions, its server, the rendering "
        f"alone): {work:.1f} s, or {cpu_floor:.2f} s on {cores} cores. With renditions on, "
        f"the sync and its server used {used:.1f} s of CPU.",
        *(
            [
                f"- The photos' bytes through the {args.uplink_mbit:g} Mbit/s uplink take "
                f"{link:.2f} s at least (the sync without renditions took "
                f"{med(names[0], 'initial', 'wall') / link:.2f} x that)."
            ]
            if link
            else []
        ),
        f"- So no overlap can take less than **{floor:.2f} s** = {floor / slower:.2f} x the "
        f"slower of the two; the sync with renditions took {on / floor:.2f} x that floor.",
        f"- First sync with renditions: {on:.2f} s = **{ratio:.2f} x** the slower of the sync "
        f"without them and the rendering alone ({slower:.2f} s); target <= {TARGET} x: "
        f"**{'PASS' if ratio <= TARGET else 'FAIL'}**.",
        f"- No-op with renditions: the same requests as without them: "
        f"**{'PASS' if noop_same else 'FAIL'}**.",
        "",
    ]
    return "\n".join(lines)


def _link(args) -> str:
    if not (args.rtt_ms or args.uplink_mbit):
        return "on this machine's loopback"
    cap = f", the uplink capped at {args.uplink_mbit:g} Mbit/s" if args.uplink_mbit else ""
    return f"through bench/wanproxy.py: {args.rtt_ms:g} ms round trip{cap}"


if __name__ == "__main__":
    main()
