"""Measured spectra the generators share: camera sensitivities, illuminants and their loci, reflectance
bases and the skin model."""
