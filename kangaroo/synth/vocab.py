"""The small, regular vocabulary of the sample corpus: shapes, colours, directions and backgrounds.

Colours are saturated and far apart in RGB so that they survive H.264 chroma subsampling and a tiny model can
tell them apart; backgrounds are dark so that every shape colour (white included) stands out.
"""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star")

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "green": (30, 200, 40),
    "blue": (30, 60, 240),
    "yellow": (250, 230, 30),
    "purple": (150, 40, 200),
    "orange": (255, 140, 0),
    "white": (245, 245, 245),
    "cyan": (0, 215, 230),
}

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "dark gray": (45, 45, 45),
    "dark blue": (10, 15, 60),
}

# Unit steps in image coordinates (x right, y down).
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

NUMBER_WORDS: tuple[str, ...] = ("one", "two", "three", "four", "five")
