"""The course's model families beyond the CNN, GAN and transfer classifier: each a package
`imagepipe.families.<name>` whose `family` module holds its `FAMILY`
(imagepipe.families.base.Family), run by the generic train and evaluate stages."""
