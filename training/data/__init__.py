"""Training data: MNIST, the evaluation devsets, synthetic photos, touching pairs, reader-cut
crops and the augmentation applied to whole batches."""
