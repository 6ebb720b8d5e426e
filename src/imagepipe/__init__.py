"""imagepipe: the library behind the pipeline's stages, flows and benchmarks."""
