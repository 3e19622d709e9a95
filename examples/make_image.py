"""Draw examples/street.png: a small photo-like grayscale scene (sky gradient, house, car, road).

The project makes its own example image so nothing is downloaded and it is free to redistribute.
Run: python examples/make_image.py
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 64


def draw() -> Image.Image:
    img = Image.new("L", (SIZE, SIZE))
    px = img.load()
    for y in range(SIZE):  # sky darkening towards the horizon, then road
        for x in range(SIZE):
            px[x, y] = 200 - y if y < 44 else 70 + (x * 3 + y) % 9
    d = ImageDraw.Draw(img)
    d.rectangle([6, 20, 30, 44], fill=150)  # house
    d.polygon([(4, 20), (18, 8), (32, 20)], fill=90)  # roof
    d.rectangle([11, 26, 17, 32], fill=40)  # window
    d.rectangle([21, 30, 26, 44], fill=60)  # door
    d.rectangle([36, 34, 60, 46], fill=30)  # car body
    d.polygon([(40, 34), (44, 27), (54, 27), (58, 34)], fill=45)  # car cabin
    d.ellipse([38, 42, 45, 49], fill=235)  # wheels
    d.ellipse([51, 42, 58, 49], fill=235)
    d.line([(0, 55), (63, 55)], fill=230, width=1)  # lane marking
    return img.filter(ImageFilter.SMOOTH)


def draw_colour() -> Image.Image:
    """The same scene in colour (examples/street-rgb.png), for --rgb and the RGB composite of --save-maps."""
    img = Image.new("RGB", (SIZE, SIZE))
    px = img.load()
    for y in range(SIZE):  # blue sky lightening towards the horizon, then a grey road
        for x in range(SIZE):
            px[x, y] = (90 + y, 150 + y, 235) if y < 44 else (70 + (x * 3 + y) % 9,) * 3
    d = ImageDraw.Draw(img)
    d.rectangle([6, 20, 30, 44], fill=(225, 200, 150))  # house
    d.polygon([(4, 20), (18, 8), (32, 20)], fill=(170, 50, 40))  # roof
    d.rectangle([11, 26, 17, 32], fill=(60, 110, 170))  # window
    d.rectangle([21, 30, 26, 44], fill=(110, 70, 40))  # door
    d.rectangle([36, 34, 60, 46], fill=(200, 30, 30))  # car body
    d.polygon([(40, 34), (44, 27), (54, 27), (58, 34)], fill=(160, 20, 20))  # car cabin
    d.ellipse([38, 42, 45, 49], fill=(30, 30, 30))  # wheels
    d.ellipse([51, 42, 58, 49], fill=(30, 30, 30))
    d.line([(0, 55), (63, 55)], fill=(240, 220, 60), width=1)  # lane marking
    return img.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    for name, image in (("street.png", draw()), ("street-rgb.png", draw_colour())):
        out = Path(__file__).with_name(name)
        image.save(out, optimize=True)
        print(out)
