"""The kernels, written once against the array module ``xp`` (see `opdispatch_cupy.xp`)."""
