"""Reading face images and aligning them into veilbench's canonical crop space."""
