"""The image track (post 004; docs/images.md): a linear GAN and a DCGAN on digit images.

Framework-free, like the 1D track's core, whose machinery it reuses (seeding by purpose, records,
the store, the sweep, the report's statistics):

    config.py     ImageConfig: the immutable value that names an image experiment
    data.py       the data sets (digits8 offline; MNIST and Fashion-MNIST IDX files), checksums, splits
    weights.py    NumPy-drawn initial weights of the linear GAN and the DCGAN, in draw order
    streams.py    the batches (image indices, z) and step sizes fed to the twins, the latent grid
    training.py   train(config, framework): drives a twin (impls/torch_image.py, impls/tf_image.py)
    scoring.py    per-seed records of an image run (metrics/images/), and the files a run stores
"""
