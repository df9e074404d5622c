"""What is trained on, verified: the datasets, where their files come from, and the non-digits.

- `datasets`: MNIST and Fashion-MNIST, their checksums, the cache, loading;
- `sources`: where the files come from, each checked before it is written;
- `idx`: the IDX file format they are published in;
- `atomic`: writing a file so that no reader ever sees part of it;
- `negatives`: images that are not digits, for a "not a digit" class;
- `strokes`: digits drawn in pen strokes from style templates, with pens from a fine nib to a broad marker;
- `typefaces`: digits printed in the typefaces every installation has;
- `scans`: digits as a coarse scan shows them.

It imports only `serving` (non-digits and drawn digits go through the same preprocessing as people's images).
"""
