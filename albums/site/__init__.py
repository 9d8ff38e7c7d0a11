"""The site: public albums, albums shared by link, their photos (served from the bucket's
renditions); a door like the admin and the API, reading records and linking to renditions."""
