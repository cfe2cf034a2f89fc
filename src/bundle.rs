//! `.sftb` bundles: a manifest, its OSDs and icons and, for stand-alone
//! delivery, the SFT itself, in one checksummed file (see `docs/BUNDLE.md`).
