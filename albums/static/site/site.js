// photosite's public pages: more photos as the visitor scrolls, and a lightbox with
// ←/→/Esc and swipe. Every link works without this script (plain pages and "More photos").
"use strict";

(() => {
  const grid = document.getElementById("grid");
  if (!grid) return;

  // More photos: the next page's tiles, fetched when the "More photos" link comes near.
  const loadMore = async (link) => {
    link.removeAttribute("data-more");
    link.textContent = "Loading…";
    const response = await fetch(link.href, { headers: { "X-Photosite-Fragment": "1" } });
    if (!response.ok) { link.textContent = "More photos"; link.setAttribute("data-more", ""); return; }
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    link.replaceWith(template.content);
    watchMore();
  };
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (entry.isIntersecting) { observer.unobserve(entry.target); loadMore(entry.target); }
        }
      }, { rootMargin: "800px 0px" })
    : null;
  const watchMore = () => {
    const link = grid.querySelector("a[data-more]");
    if (link && observer) observer.observe(link);
  };
  watchMore();

  // The lightbox.
  const box = document.createElement("div");
  box.className = "lightbox";
  box.hidden = true;
  box.setAttribute("role", "dialog");
  box.setAttribute("aria-modal", "true");
  box.innerHTML = '<img alt=""><button class="prev" aria-label="Previous">‹</button>' +
    '<button class="next" aria-label="Next">›</button><button class="close" aria-label="Close">×</button>' +
    '<div class="caption"></div>';
  document.body.append(box);
  const image = box.querySelector("img");
  const caption = box.querySelector(".caption");
  let current = null;

  const tiles = () => Array.from(grid.querySelectorAll("a.tile"));
  const show = (tile) => {
    if (!tile) return;
    current = tile;
    image.src = tile.dataset.full;
    image.width = Number(tile.dataset.width);
    image.height = Number(tile.dataset.height);
    image.alt = tile.querySelector("img").alt;
    caption.textContent = tile.dataset.date || "";
    box.hidden = false;
    document.body.style.overflow = "hidden";
  };
  const step = (by) => {
    const all = tiles();
    const next = all[all.indexOf(current) + by];
    if (next) show(next);
    else if (by > 0) {
      const more = grid.querySelector("a[data-more]");
      if (more) loadMore(more).then(() => { const after = tiles()[all.length]; if (after) show(after); });
    }
  };
  const close = () => {
    box.hidden = true;
    image.removeAttribute("src");
    document.body.style.overflow = "";
    if (current) current.focus();
    current = null;
  };

  grid.addEventListener("click", (event) => {
    const tile = event.target.closest("a.tile");
    if (!tile || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    show(tile);
  });
  box.querySelector(".prev").addEventListener("click", () => step(-1));
  box.querySelector(".next").addEventListener("click", () => step(1));
  box.querySelector(".close").addEventListener("click", close);
  box.addEventListener("click", (event) => { if (event.target === box) close(); });
  document.addEventListener("keydown", (event) => {
    if (box.hidden) return;
    if (event.key === "Escape") close();
    else if (event.key === "ArrowRight") step(1);
    else if (event.key === "ArrowLeft") step(-1);
  });
  let touchX = null;
  box.addEventListener("pointerdown", (event) => { touchX = event.clientX; });
  box.addEventListener("pointerup", (event) => {
    if (touchX === null) return;
    const moved = event.clientX - touchX;
    touchX = null;
    if (Math.abs(moved) > 50) step(moved < 0 ? 1 : -1);
  });
})();
