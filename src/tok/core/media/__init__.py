"""Media readers and writers, one module per modality."""

from .image import IMAGE_EXTENSIONS, ImageInfo, list_images, read_image, resize_shorter_side, write_image

__all__ = ["IMAGE_EXTENSIONS", "ImageInfo", "list_images", "read_image", "resize_shorter_side", "write_image"]
