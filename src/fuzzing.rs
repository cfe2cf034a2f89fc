//! Entry points for fuzz targets and the corpus replay test. Not part of
//! the stable API.

use crate::read::Package;

/// Parse arbitrary bytes and exercise every read path: walk entries, look
/// each up by path, read every file (whole, by chunks, at offsets), read
/// every block, and verify. Must never panic.
pub fn parse_and_walk(data: &[u8]) {
    let Ok(pkg) = Package::parse(data) else {
        return;
    };
    let _ = pkg.metadata();
    let index = pkg.index();
    for id in index.ids().take(4096) {
        let _ = pkg.read_block(id);
    }
    for e in pkg.entries().take(4096) {
        let Ok(e) = e else { break };
        let _ = pkg.find(e.path());
        if e.is_file() {
            let _ = pkg.read_file(&e);
            let mut buf = [0u8; 97];
            let _ = pkg.read_at(&e, e.size() / 2, &mut buf);
            for c in pkg.chunks(&e).take(64) {
                let _ = c;
            }
        }
    }
    let _ = pkg.find("a/b");
    let _ = pkg.verify();
}
