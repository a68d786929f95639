"""Design-space exploration: sweep files, point execution (process pool or Dask), reports, comparisons."""
