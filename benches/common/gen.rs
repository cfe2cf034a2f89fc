//! Deterministic inputs shared by the benches: a seeded RNG and
//! source-like and bytecode-like file trees.
#![allow(dead_code)]

/// splitmix64: tiny, fast and reproducible.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "def",
    "self",
    "return",
    "import",
    "from",
    "class",
    "if",
    "else",
    "for",
    "in",
    "None",
    "True",
    "False",
    "raise",
    "try",
    "except",
    "with",
    "as",
    "lambda",
    "yield",
    "value",
    "result",
    "name",
    "path",
    "data",
    "index",
    "buffer",
    "offset",
    "length",
    "config",
    "os",
    "sys",
    "re",
    "list",
    "dict",
    "len",
    "range",
    "print",
    "assert",
    "not",
    "and",
    "or",
    "is",
    "while",
    "pass",
    "args",
    "kwargs",
    "__init__",
    "encoding",
    "stream",
    "error",
    "module",
    "object",
    "str",
    "int",
    "bytes",
    "0",
    "1",
    "\"utf-8\"",
    "# TODO",
];
const PUNCT: &[&str] = &[" ", " ", " ", ", ", "(", "): ", ".", " = ", "[", "]"];

/// Source-code-like text: compresses about 4:1 with zlib 6.
pub(crate) fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        for _ in 0..rng.below(4) {
            out.extend_from_slice(b"    ");
        }
        for _ in 0..3 + rng.below(8) {
            out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            out.extend_from_slice(PUNCT[rng.below(PUNCT.len() as u64) as usize].as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

/// Bytecode-like data: short repeats mixed with noise, about 2:1.
pub(crate) fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if out.len() > 64 && rng.below(2) == 0 {
            let back = 1 + rng.below(64) as usize;
            let n = 3 + rng.below(12) as usize;
            for _ in 0..n {
                out.push(out[out.len() - back]);
            }
        } else {
            out.push(rng.below(96) as u8);
        }
    }
    out.truncate(len);
    out
}

/// A tree of `files` files (paths, contents) with log-uniform sizes in
/// `min..max` bytes, 70% text, 30% binary, ~40 files per directory.
pub(crate) fn tree(seed: u64, files: usize, min: u64, max: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(seed);
    let (lmin, lmax) = ((min.max(1) as f64).ln(), (max as f64).ln());
    (0..files)
        .map(|i| {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let size = (lmin + u * (lmax - lmin)).exp() as usize;
            let size = if min == 0 { size - 1 } else { size };
            let dir = i / 40;
            let path = format!("lib{:03}/mod{:04}/file{i:06}.py", dir / 50, dir);
            let data = if rng.below(10) < 7 {
                text(&mut rng, size)
            } else {
                binary(&mut rng, size)
            };
            (path, data)
        })
        .collect()
}
