"""The OpenFX plugin: C++ sources (src/), CMake build, test host (tests/); `install` puts the
built bundle where OFX hosts look (`ipfacediff install-ofx`). See docs/ofx.md."""
