//! Publishing descriptors (feature `publish`): OSD files, the manifest and
//! icons, and CODEBASE resolution; see `docs/PUBLISHING.md`.
