"""Find faces and label each mask / no mask, in images, video files and webcams (``python -m detect``)."""
