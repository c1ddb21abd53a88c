//! The C2SP tlog-tiles file layout: tile paths and entry bundles.

use std::path::{Path, PathBuf};

/// The tile height: 2^8 = 256 hashes per full tile, 256 entries per full bundle.
pub(crate) const HEIGHT: u8 = 8;

/// Which tree a tile file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Tree {
    /// `tile/entries/…`: entry bundles.
    Entries,
    /// `tile/<L>/…`: hash tiles of level L.
    Level(u8),
}

/// One tile file's coordinates: tree, index, and width (`None` for a full tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TileId {
    pub tree: Tree,
    pub n: u64,
    pub w: Option<u32>,
}

impl TileId {
    /// The path relative to the log directory, e.g. `tile/0/x001/234.p/17`.
    pub fn rel_path(&self) -> String {
        let tree = match self.tree {
            Tree::Entries => "entries".to_string(),
            Tree::Level(l) => l.to_string(),
        };
        let mut n = self.n;
        let mut index = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            index = format!("x{:03}/{index}", n % 1000);
        }
        match self.w {
            Some(w) => format!("tile/{tree}/{index}.p/{w}"),
            None => format!("tile/{tree}/{index}"),
        }
    }

    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.rel_path())
    }

    /// The number of entries or hashes the tile holds.
    pub fn width(&self) -> u64 {
        self.w.map_or(1 << HEIGHT, u64::from)
    }

    /// Parses a path relative to the log directory; `None` when it is not a tile path.
    pub fn parse(rel: &str) -> Option<TileId> {
        let rest = rel.strip_prefix("tile/")?;
        let (tree, rest) = rest.split_once('/')?;
        let tree = if tree == "entries" {
            Tree::Entries
        } else {
            if tree.len() > 1 && tree.starts_with('0') {
                return None;
            }
            Tree::Level(tree.parse().ok()?)
        };
        let mut parts: Vec<&str> = rest.split('/').collect();
        let mut w = None;
        if parts.len() >= 2 {
            let last = parts.len() - 1;
            if let Some(stem) = parts[last - 1].strip_suffix(".p") {
                let width: u32 = parts[last].parse().ok()?;
                if width == 0 || width >= 1 << HEIGHT || parts[last] != width.to_string() {
                    return None;
                }
                w = Some(width);
                parts[last - 1] = stem;
                parts.pop();
            }
        }
        let last = parts.len().checked_sub(1)?;
        let mut n: u64 = 0;
        for (i, part) in parts.iter().enumerate() {
            let digits = if i < last { part.strip_prefix('x')? } else { part };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: u64 = digits.parse().ok()?;
            n = n.checked_mul(1000)?.checked_add(value)?;
        }
        let id = TileId { tree, n, w };
        // One spelling per tile: reject e.g. a leading `x000/`.
        (id.rel_path() == rel).then_some(id)
    }
}

/// Encodes leaves as an entry bundle: each a big-endian u16 length, then the bytes.
pub(crate) fn encode_bundle<'a>(leaves: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for leaf in leaves {
        // Lengths are checked against MAX_ENTRY_BYTES before any leaf reaches a bundle.
        let len = u16::try_from(leaf.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(leaf);
    }
    out
}

/// Decodes an entry bundle. On error: the position in the bundle of the entry that cannot be read,
/// and what is wrong.
pub(crate) fn decode_bundle(bytes: &[u8]) -> Result<Vec<Vec<u8>>, (usize, String)> {
    let mut leaves = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 2) else {
            return Err((leaves.len(), "bundle ends inside a length prefix".to_string()));
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(leaf) = bytes.get(at + 2..at + 2 + len) else {
            return Err((
                leaves.len(),
                format!(
                    "bundle ends inside the entry: {len} bytes announced, {} present",
                    bytes.len() - at - 2
                ),
            ));
        };
        leaves.push(leaf.to_vec());
        at += 2 + len;
    }
    Ok(leaves)
}

/// Every tile file under `dir/tile`, and every other file there (left-over temporary files and
/// anything that is not a tile path), as paths relative to `dir`.
pub(crate) fn list_tiles(dir: &Path) -> std::io::Result<(Vec<TileId>, Vec<String>)> {
    let mut tiles = Vec::new();
    let mut others = Vec::new();
    let mut stack = vec![dir.join("tile")];
    while let Some(d) = stack.pop() {
        let read = match std::fs::read_dir(&d) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for item in read {
            let item = item?;
            let path = item.path();
            if item.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            match TileId::parse(&rel) {
                Some(id) => tiles.push(id),
                None => others.push(rel),
            }
        }
    }
    tiles.sort();
    others.sort();
    Ok((tiles, others))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tile_paths_follow_the_c2sp_spelling_and_parse_back() {
        let cases = [
            (
                TileId {
                    tree: Tree::Level(0),
                    n: 1_234_067,
                    w: None,
                },
                "tile/0/x001/x234/067",
            ),
            (
                TileId {
                    tree: Tree::Entries,
                    n: 5,
                    w: Some(17),
                },
                "tile/entries/005.p/17",
            ),
            (
                TileId {
                    tree: Tree::Level(2),
                    n: 1000,
                    w: Some(3),
                },
                "tile/2/x001/000.p/3",
            ),
        ];
        for (id, path) in cases {
            assert_eq!(id.rel_path(), path);
            assert_eq!(TileId::parse(path), Some(id));
        }
        for bad in [
            "tile/0/1",
            "tile/0/x000/001",
            "tile/01/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "checkpoint",
        ] {
            assert_eq!(TileId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bundle_decodes_to_its_leaves_and_a_cut_bundle_names_the_entry() {
        let bundle = encode_bundle([b"ab".as_slice(), b"".as_slice(), b"xyz".as_slice()]);
        assert_eq!(
            decode_bundle(&bundle).unwrap(),
            vec![b"ab".to_vec(), vec![], b"xyz".to_vec()]
        );
        let (at, what) = decode_bundle(&bundle[..bundle.len() - 1]).unwrap_err();
        assert_eq!(at, 2);
        assert!(what.contains("3 bytes announced, 2 present"), "{what}");
    }
}
