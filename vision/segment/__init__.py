"""Find the handwritten digits in a photo or scan and group them into numbers and lines.

The steps, each answering something real photos contain:

1. Work at a bounded resolution: large photos are shrunk, tiny crops (a 60×35 px cell of
   a form) are enlarged so strokes are several pixels wide. A quick probe on a 320 px
   copy measures the writing; large writing is worked on at about 42 px digit height,
   which is as accurate and several times faster. The size estimate ignores outlines
   (a hard shadow's edge) far taller than the solid shapes, shapes far fainter than
   the writing (a shadow's tip), and shapes far bolder and taller than the rest (a
   shadow's solid wedge or narrow spike, as dark as the pen's blurred strokes on the
   small copy).
2. Ink map: each colour channel is divided by its background (a morphological closing
   half a digit tall, so it follows shadow edges; the probe's or a first pass's digit
   height sets it), which flattens uneven light and makes coloured paper white; the
   darkest channel is kept as ink, so any pen colour shows. A channel in which the pen
   is brighter than the paper (a red pen on blue paper) is left out: its closing would
   spread the pen's brightness over the writing. Light-on-dark input is detected and
   inverted.
3. Two thresholds with hysteresis: a firm one finds strokes, a softer one recovers their
   faint parts. Faint lines that join into a net over the page (squared paper, a form,
   photographed at a slant) are thresholded again between their ink and the pen's.
4. Ruled lines, table lines and box walls are removed (long thin runs), and the strokes
   they crossed are reconnected; on lines printed lighter than the pen, the pen's own
   strokes are kept.
5. A shape far too tall for a digit keeps only its firmest ink (a digit joined to a
   shadow's edge). Components are filtered by size relative to the median digit height
   and by ink (far fainter than the writing, or fainter and bolder: a shadow's wedge),
   fragments are merged (the hat of a 5, a broken 4; not two small digits in a column, nor
   a remnant of a rule). The rim of a dark region (the desk at a torn paper edge) is
   dropped. A bold stain or a shape cut by the image's border is kept: the reader's line
   model decides whether it is a digit. Touching digits are split along cut paths through
   the faintest ink into the sequence of pieces the classifier scores best (dynamic
   programming; the thinnest cuts are tried first; the reader's segmenter knows a touching
   pair as "not one digit", so such a shape rarely wins whole, and a shape it reads surely
   as one digit is cut only into far surer pieces), and digits are chained into lines by
   their neighbours, each line followed along its own slope, so slanted lines survive the
   gap between two numbers; a large gap separates two numbers on one line. A page whose
   lines lean by DESKEW_MIN degrees or more is photographed askew: its lean is returned
   (`Segmentation.lean`), and the reader turns its writing level and segments it again.

The modules follow the steps: `resolution` (1), `ink` (2, 3, and the digit height every
later size is relative to), `lines` (4), then `filters`, `split` and `layout` (5).
`candidates` holds the candidate type and the crops the classifier reads, `components`
the connected-component helpers; `segment` below runs the steps in order.

"The classifier" here is whatever `Scorer` the caller passes. `DigitReader` passes its
fixed segmenter model: the thresholds in these modules are tuned to its confidences.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.segment.candidates import (
    Candidate,
    Scorer,
    Segmentation,
    SegmentationError,
    candidates_from_mask,
    merge,
    score_candidates,
)
from vision.segment.filters import (
    drop_faint,
    drop_noise,
    drop_rims,
    firm_parts_of_tall,
    merge_fragments,
)
from vision.segment.ink import ink_and_mask, typical_height
from vision.segment.layout import DESKEW_MIN, chain_lines, group_numbers, page_lean
from vision.segment.lines import remove_rules
from vision.segment.resolution import MAX_SIDE, working_image
from vision.segment.split import merge_checked, split_best, split_touching

__all__ = [
    "MAX_SIDE",
    "Candidate",
    "Scorer",
    "Segmentation",
    "SegmentationError",
    "chain_lines",
    "group_numbers",
    "merge",
    "score_candidates",
    "segment",
    "split_best",
]


def segment(image: np.ndarray, scorer: Scorer) -> Segmentation:
    """Find, clean, split and group the digits of a BGR or grey uint8 image."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    work, scale, probed_h = working_image(image)
    layers = ink_and_mask(work, probed_h)
    ink, mask, digit_h = layers.ink, layers.mask, layers.digit_h
    if digit_h <= 0:
        return Segmentation([], scale, ink, mask)
    clean = remove_rules(mask, digit_h, ink)
    cands = candidates_from_mask(clean)
    digit_h = typical_height(clean) or digit_h
    cands = firm_parts_of_tall(cands, digit_h, ink)
    cands = [c for c in cands if c.h >= 0.25 * digit_h or c.w >= 0.25 * digit_h]
    cands = merge_fragments(cands, digit_h)
    cands = drop_noise(cands, digit_h, clean.shape)
    cands = drop_faint(cands, ink)
    cands = drop_rims(cands, work, digit_h)
    if not cands:
        return Segmentation([], scale, ink, clean)
    digit_h = float(np.median([c.h for c in cands]))
    cands = split_touching(cands, ink, scorer)  # every candidate comes back scored
    cands = merge_checked(cands, digit_h, ink, scorer)
    lines = chain_lines(cands, digit_h)
    lean = page_lean(lines, digit_h)
    if abs(lean) < DESKEW_MIN:
        lean = 0.0  # level, or handwriting's own wobble
    return Segmentation(group_numbers(lines), scale, ink, clean, lean)
