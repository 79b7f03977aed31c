"""A procedurally generated image dataset with known ground truth.

Every image holds one filled shape of a random colour, size, position and
rotation on a cluttered, textured background, together with the shape's class
and its exact pixel mask. Because the mask is known, one can measure whether an
attribution map points at the object. The shapes all cover about the same area
for a given size parameter, and their colour is independent of the class, so a
classifier must tell them apart by outline, not by colour or size.

The background is a smooth colour field, oriented stripes and a few thin
straight lines. None of these are filled shapes: a line is at most about two
pixels wide, while the narrowest shape part (an arm of a cross) is six or more.

Everything is NumPy/SciPy; ten thousand 96x96 images take a few seconds.
"""

from __future__ import annotations

import numpy as np

from ..validation import check_int

class_names: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")

# Shape geometry in units of the per-image radius r. The sizes are chosen so
# that every class covers about 2.0 r^2 pixels (a circle of radius 0.8 r).
CIRCLE_RADIUS = 0.8
SQUARE_HALF_SIDE = 0.71
TRIANGLE_CIRCUMRADIUS = 1.244
STAR_OUTER, STAR_INNER = 1.23, 0.55
CROSS_HALF_LENGTH, CROSS_HALF_WIDTH = 0.99, 0.3
RING_OUTER, RING_INNER = 0.96, 0.53
# Distance from the centre to the farthest point of each shape, in class order;
# it keeps every shape wholly inside the image.
BOUNDING_RADIUS = np.array(
    [
        CIRCLE_RADIUS,
        SQUARE_HALF_SIDE * np.sqrt(2),
        TRIANGLE_CIRCUMRADIUS,
        STAR_OUTER,
        np.hypot(CROSS_HALF_LENGTH, CROSS_HALF_WIDTH),
        RING_OUTER,
    ]
)

# The radius r is drawn from this range, as a fraction of the image side.
RADIUS_RANGE = (0.12, 0.22)
# A shape colour must differ from the background under it by at least this
# Euclidean RGB distance, so that every shape is visible.
MIN_CONTRAST = 90.0
COLOUR_CANDIDATES = 8
LINES_PER_IMAGE = 5
# The background's colour field varies over this many cells per side.
COARSE_GRID = 4
LINE_HALF_WIDTH = 0.5
NOISE_SIGMA = 4.0
# Images are rendered in chunks to bound the memory of the per-pixel arrays.
CHUNK = 256


def make_shapes(
    n: int, *, seed: int = 0, size: int = 96
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate ``n`` labelled shape images with their object masks.

    Parameters
    ----------
    n : int
        Number of images. Classes are balanced (counts differ by at most one)
        and shuffled.
    seed : int
        The same ``(n, seed, size)`` always gives the same images.
    size : int
        Side of the square images in pixels, at least 32.

    Returns
    -------
    images : ndarray, uint8, (n, size, size, 3)
        RGB pixels 0..255.
    labels : ndarray, int64, (n,)
        Index into ``class_names``.
    masks : ndarray, bool, (n, size, size)
        True on the pixels painted with the shape's colour.

    Examples
    --------
    >>> images, labels, masks = make_shapes(4, seed=1)
    >>> images.shape, images.dtype, masks.shape
    ((4, 96, 96, 3), dtype('uint8'), (4, 96, 96))
    """
    n = check_int("n", n, low=1)
    seed = check_int("seed", seed, low=0)
    size = check_int("size", size, low=32, high=1024)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(class_names))
    radius = size * rng.uniform(*RADIUS_RANGE, n)
    margin = BOUNDING_RADIUS[labels] * radius + 1.0
    centre = margin[:, None] + rng.uniform(0, 1, (n, 2)) * (size - 2 * margin)[:, None]
    angle = rng.uniform(0, 2 * np.pi, n)
    colours = rng.uniform(0, 255, (n, COLOUR_CANDIDATES, 3))
    chunk_seeds = rng.integers(0, 2**63, (n + CHUNK - 1) // CHUNK)

    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    for index, start in enumerate(range(0, n, CHUNK)):
        part = slice(start, min(start + CHUNK, n))
        chunk_rng = np.random.default_rng(chunk_seeds[index])
        masks[part] = _shape_masks(labels[part], centre[part], radius[part], angle[part], size)
        background = _backgrounds(chunk_rng, len(labels[part]), size)
        colour = _contrasting_colour(colours[part], background, masks[part])
        canvas = np.where(masks[part][..., None], colour[:, None, None, :], background)
        canvas += NOISE_SIGMA * chunk_rng.standard_normal(canvas.shape, dtype=np.float32)
        images[part] = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64), masks


def _shape_masks(
    labels: np.ndarray, centre: np.ndarray, radius: np.ndarray, angle: np.ndarray, size: int
) -> np.ndarray:
    """Rasterise each image's shape from its class, centre, radius and rotation."""
    pixel = np.arange(size, dtype=np.float32) + 0.5
    dx = pixel[None, None, :] - centre[:, 0, None, None].astype(np.float32)
    dy = pixel[None, :, None] - centre[:, 1, None, None].astype(np.float32)
    cos = np.cos(angle).astype(np.float32)[:, None, None]
    sin = np.sin(angle).astype(np.float32)[:, None, None]
    scale = radius.astype(np.float32)[:, None, None]
    # (u, v): pixel coordinates in the shape's own rotated frame, in units of r.
    u = (dx * cos + dy * sin) / scale
    v = (dy * cos - dx * sin) / scale
    masks = np.zeros(u.shape, bool)
    for label, name in enumerate(class_names):
        chosen = labels == label
        if chosen.any():
            masks[chosen] = _inside(name, u[chosen], v[chosen])
    return masks


def _inside(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if name == "circle":
        return u * u + v * v <= CIRCLE_RADIUS**2
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE
    if name == "triangle":
        return _inside_star(
            u, v, 3, TRIANGLE_CIRCUMRADIUS, TRIANGLE_CIRCUMRADIUS * np.cos(np.pi / 3)
        )
    if name == "star":
        return _inside_star(u, v, 5, STAR_OUTER, STAR_INNER)
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        horizontal = (au <= CROSS_HALF_LENGTH) & (av <= CROSS_HALF_WIDTH)
        vertical = (av <= CROSS_HALF_LENGTH) & (au <= CROSS_HALF_WIDTH)
        return horizontal | vertical
    if name == "ring":
        squared = u * u + v * v
        return (squared <= RING_OUTER**2) & (squared >= RING_INNER**2)
    raise ValueError(f"name: expected one of {class_names}, got {name!r}")


def _inside_star(
    u: np.ndarray, v: np.ndarray, points: int, outer: float, inner: float
) -> np.ndarray:
    """Inside test for a star with ``points`` tips, or a regular polygon.

    The tips lie at distance ``outer`` on the u axis and every 360/points
    degrees; the notches between them at distance ``inner``. With ``inner =
    outer * cos(pi / points)`` the notches lie on straight edges and the star
    is a regular polygon. By symmetry every point folds into the wedge between
    one tip (angle 0) and the next notch (angle pi / points), where the
    boundary is the single segment tip-notch.
    """
    sector = 2 * np.pi / points
    phi = np.mod(np.arctan2(v, u), sector)
    folded = np.minimum(phi, sector - phi)
    distance = np.hypot(u, v)
    x, y = distance * np.cos(folded), distance * np.sin(folded)
    notch_x, notch_y = inner * np.cos(np.pi / points), inner * np.sin(np.pi / points)
    # The origin is inside, where this cross product is positive.
    return (notch_x - outer) * y - notch_y * (x - outer) >= 0


def _backgrounds(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Smooth colour field + oriented stripes + thin lines, float32 (count, size, size, 3)."""
    coarse = rng.uniform(30, 225, (count, COARSE_GRID, COARSE_GRID, 3)).astype(np.float32)
    spread = _smooth_spread(size)
    field = np.einsum("yi,nijc,xj->nyxc", spread, coarse, spread, optimize=True)

    pixel = np.arange(size, dtype=np.float32) + 0.5
    stripe_angle = rng.uniform(0, np.pi, count).astype(np.float32)[:, None, None]
    frequency = (rng.uniform(3, 10, count) / size).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, count).astype(np.float32)[:, None, None]
    amplitude = rng.uniform(5, 30, (count, 1)) * rng.uniform(0.3, 1.0, (count, 3))
    along = pixel[None, None, :] * np.cos(stripe_angle) + pixel[None, :, None] * np.sin(
        stripe_angle
    )
    stripes = np.sin(np.float32(2 * np.pi) * frequency * along + phase)
    field += stripes[..., None] * amplitude.astype(np.float32)[:, None, None, :]

    starts = rng.uniform(0, size, (count, LINES_PER_IMAGE, 1, 2)).astype(np.float32)
    ends = rng.uniform(0, size, (count, LINES_PER_IMAGE, 1, 2)).astype(np.float32)
    line_colours = rng.uniform(0, 255, (count, LINES_PER_IMAGE, 3)).astype(np.float32)
    # Lines are drawn by stamping points every half pixel along two parallel
    # tracks half a pixel either side of the centre line: about two pixels wide.
    along = np.linspace(0, 1, 2 * size, dtype=np.float32)[None, None, :, None]
    direction = ends - starts
    normal = direction[..., ::-1] * np.array([-1, 1], np.float32)
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
    centre = starts + along * direction
    points = np.concatenate(
        [centre - LINE_HALF_WIDTH * normal, centre + LINE_HALF_WIDTH * normal], 2
    )
    columns, rows = np.clip(np.floor(points), 0, size - 1).astype(np.intp).transpose(3, 0, 1, 2)
    image_index = np.broadcast_to(np.arange(count)[:, None, None], rows.shape)
    line_index = np.broadcast_to(np.arange(LINES_PER_IMAGE)[None, :, None], rows.shape)
    # NumPy assigns repeated indices in order, so later lines cover earlier ones.
    drawn = np.full((count, size, size), -1, np.intp)
    drawn[image_index, rows, columns] = line_index
    on_line = drawn >= 0
    field[on_line] = line_colours[np.nonzero(on_line)[0], drawn[on_line]]
    return np.clip(field, 0, 255)


def _smooth_spread(size: int) -> np.ndarray:
    """Weights (size, COARSE_GRID) that spread a coarse grid smoothly over ``size`` pixels."""
    knots = (np.arange(COARSE_GRID) + 0.5) * size / COARSE_GRID
    pixel = np.arange(size) + 0.5
    weights = np.exp(-(((pixel[:, None] - knots[None, :]) / (size / COARSE_GRID)) ** 2))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _contrasting_colour(
    candidates: np.ndarray, background: np.ndarray, masks: np.ndarray
) -> np.ndarray:
    """Per image, the first candidate colour far enough from the background under the shape.

    Where no candidate is far enough, the farthest one.
    """
    area = np.maximum(masks.sum(axis=(1, 2)), 1)[:, None]
    under = np.einsum("nhw,nhwc->nc", masks.astype(np.float32), background) / area
    distance = np.linalg.norm(candidates - under[:, None, :], axis=2)
    far_enough = distance >= MIN_CONTRAST
    choice = np.where(far_enough.any(axis=1), far_enough.argmax(axis=1), distance.argmax(axis=1))
    return candidates[np.arange(len(candidates)), choice].astype(np.float32)
