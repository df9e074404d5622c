"""What is trained on, verified: the datasets, where their files come from, and the non-digits.

- `datasets`: MNIST and Fashion-MNIST, their checksums, the cache, loading;
- `sources`: where the files come from, each checked before it is written;
- `idx`: the IDX file format they are published in;
- `atomic`: writing a file so that no reader ever sees part of it;
- `negatives`: images that are not digits, for a "not a digit" class.

It imports only `serving` (the non-digits go through the same preprocessing as people's images).
"""
