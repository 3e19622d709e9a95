"""Images as tensors: float32 in [0, 1], grayscale (1, H, W) or RGB (3, H, W), Pillow's bomb guard
tied to the element limit."""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING, Any

from cnnops.errors import InputError, setting
from cnnops.io.memory import check_memory
from cnnops.text import echo

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: decoding holds up to this many bytes a pixel (the decoded image, its conversion, the scaling) …
IMAGE_PIXEL_BYTES = 16
#: … and this many more a number of the tensor it becomes (float32, scaled and laid out)
IMAGE_ELEMENT_BYTES = 12


def read_image(path: str, label: str, *, rgb: bool, max_elements: int, max_memory: int | None = None) -> np.ndarray:
    """An image as float32 in [0, 1]: (1, H, W) grayscale, or (3, H, W) with ``rgb``; first frame only.
    Refused from its header when decoding it would need more than ``max_memory`` bytes."""
    from PIL import Image

    channels = 3 if rgb else 1
    pixel_limit = max(1, max_elements // channels)
    saved_limit = Image.MAX_IMAGE_PIXELS
    # Pillow's decompression-bomb guard follows max_elements, so raising that limit is the one fix.
    Image.MAX_IMAGE_PIXELS = pixel_limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": the pixels still decode, and io never prints
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height * channels > max_elements:
                        raise _too_many_pixels(label, width * height, channels, max_elements)
                    pixels = width * height
                    check_memory(pixels * (IMAGE_PIXEL_BYTES + IMAGE_ELEMENT_BYTES * channels), max_memory,
                                 f"decoding {label}")  # fmt: skip
                    return _image_array(image, rgb, label)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                match = re.search(r"\((\d+) pixels\)", str(exc))
                pixels = int(match.group(1)) if match else pixel_limit + 1
                raise _too_many_pixels(label, pixels, channels, max_elements) from None
            except InputError:
                raise
            except MemoryError:
                raise
            except PermissionError:
                raise InputError(f"{label} cannot be read: permission denied") from None
            except Exception as exc:  # Pillow's decoders raise many kinds for broken files
                raise InputError(
                    f"{label} cannot be decoded as an image ({echo(str(exc))}) — it may be truncated or not an image"
                ) from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved_limit


def _too_many_pixels(label: str, pixels: int, channels: int, max_elements: int) -> InputError:
    per_channel = f" × {channels} channels" if channels > 1 else ""
    return InputError(
        f"{label} has {pixels:,} pixels{per_channel}, more than {setting('max_elements')} {max_elements:,} — raise "
        f"{setting('max_elements')} to read it"
    )


def _image_array(image: Any, rgb: bool, label: str) -> np.ndarray:
    import numpy as np

    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Pillow's conversion to L clips rather than scales these, so scale them here.
        plane = np.asarray(image)
        if image.mode == "I" and plane.size and (plane.min() < 0 or plane.max() > 65535):
            # 32-bit whole numbers: scaled as 16-bit ones, anything beyond would be cut to 0 or 1 unseen
            raise InputError(
                f"{label} is a 32-bit integer image with values from {plane.min():,} to {plane.max():,}, outside "
                "the 16-bit range 0 to 65535 that cnnops scales to [0, 1] — save the values with numpy.save to "
                "use them as they are"
            )
        if image.mode == "F" and plane.size and not np.isnan(plane).all():
            low, high = float(np.nanmin(plane)), float(np.nanmax(plane))
            if low < 0 or high > 1:  # clipped, they would be cut to 0 or 1 unseen
                raise InputError(
                    f"{label} is a floating-point image with values from {low:g} to {high:g}, outside the [0, 1] "
                    "an image's values take in cnnops — save the values with numpy.save to use them as they are"
                )
        plane = plane.astype(np.float32)
        if image.mode != "F":
            plane /= np.float32(65535)
        plane = np.clip(plane, 0, 1)[None]
        return np.ascontiguousarray(np.repeat(plane, 3, axis=0) if rgb else plane)
    target = "RGB" if rgb else "L"
    if image.mode == target:  # convert() would only copy it
        converted = image
    else:
        try:
            converted = image.convert(target)
        except ValueError:  # modes such as HSV convert only by way of RGB
            converted = image.convert("RGB").convert(target)
    pixels = np.asarray(converted, dtype=np.float32)
    del converted  # the 8-bit copy is not needed once the floats exist
    pixels /= np.float32(255)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1) if rgb else pixels[None])


