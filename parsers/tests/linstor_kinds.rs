//! The four typed `linstor … list` views tell the kinds apart by their defining columns: each
//! accepts every real table of its own kind and refuses every other kind's table, at its header,
//! naming the columns it lacks. Real tables: `tests/fixtures/linstor/` and the legacy script's
//! captured `node list` tables (`SOURCES.md`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use nodewright_parsers as p;

/// The kinds, by the word their fixtures' names carry.
const KINDS: [&str; 4] = ["node-list", "storage-pool-list", "resource-list", "volume-list"];

/// Every real table with its kind.
fn tables() -> Vec<(PathBuf, &'static str)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = ["linstor", "legacy"]
        .iter()
        .flat_map(|family| std::fs::read_dir(dir.join(family)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.parent().unwrap().ends_with("linstor") || name.starts_with("linstor-nodes--")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let kind = if name.starts_with("linstor-nodes--") {
                "node-list"
            } else {
                KINDS
                    .into_iter()
                    .find(|k| name.contains(k))
                    .unwrap_or_else(|| panic!("{name}: no kind in its name"))
            };
            (path, kind)
        })
        .collect()
}

fn parse_as(kind: &str, input: &str) -> Result<(), p::ParseError> {
    match kind {
        "node-list" => p::parse_linstor_node_list(input).map(drop),
        "storage-pool-list" => p::parse_linstor_storage_pool_list(input).map(drop),
        "resource-list" => p::parse_linstor_resource_list(input).map(drop),
        "volume-list" => p::parse_linstor_volume_list(input).map(drop),
        _ => unreachable!("{kind}"),
    }
}

#[test]
fn every_kind_has_real_tables() {
    let tables = tables();
    for kind in KINDS {
        assert!(
            tables.iter().filter(|(_, k)| *k == kind).count() >= 2,
            "{kind}: {tables:?}"
        );
    }
}

#[test]
fn each_typed_view_accepts_the_real_tables_of_its_kind() {
    for (path, kind) in tables() {
        let input = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = parse_as(kind, &input) {
            panic!("{} as {kind}: {e}", path.display());
        }
    }
}

#[test]
fn each_typed_view_refuses_the_real_tables_of_every_other_kind_at_their_header() {
    for (path, kind) in tables() {
        let input = std::fs::read_to_string(&path).unwrap();
        let header_line = input
            .lines()
            .position(|l| l.trim_start().starts_with(['┊', '|']))
            .unwrap()
            + 1;
        for other in KINDS.into_iter().filter(|k| *k != kind) {
            let e = parse_as(other, &input)
                .map(|()| panic!("{} ({kind}) read as {other}", path.display()))
                .unwrap_err();
            let command = format!("`linstor {}` table", other.replace("-list", " list"));
            assert!(
                e.expected.ends_with(&format!("columns of a {command}"))
                    || e.expected.ends_with(&format!("column of a {command}")),
                "{} as {other}: {e}",
                path.display()
            );
            assert_eq!(
                (e.line, e.column),
                (header_line, 1),
                "{} as {other}: {e}",
                path.display()
            );
        }
    }
}

#[test]
fn the_refusal_names_every_missing_defining_column() {
    let resources = "╭──╮\n┊ ResourceName ┊ Node ┊ Port ┊ Usage ┊ Conns ┊ State ┊\n╞══╡\n╰──╯\n";
    let e = p::parse_linstor_volume_list(resources).unwrap_err();
    assert_eq!(
        e.expected,
        "the `VolNr` (or `VolumeNr`) column of a `linstor volume list` table"
    );
    let e = p::parse_linstor_node_list(resources).unwrap_err();
    assert_eq!(e.expected, "the `NodeType` column of a `linstor node list` table");
    let e = p::parse_linstor_storage_pool_list(resources).unwrap_err();
    assert_eq!(
        e.expected,
        "the `StoragePool` and `Driver` columns of a `linstor storage-pool list` table"
    );
    let definitions = "╭──╮\n┊ ResourceName ┊ ResourceGroup ┊ Layers ┊ State ┊\n╞══╡\n╰──╯\n";
    let e = p::parse_linstor_resource_list(definitions).unwrap_err();
    assert_eq!(
        e.expected,
        "the `Node` (or `NodeName`) column of a `linstor resource list` table"
    );
    assert_eq!((e.line, e.column), (2, 1));
}

#[test]
fn auto_detection_names_every_real_table_as_its_own_kind() {
    for (path, kind) in tables() {
        let input = std::fs::read_to_string(&path).unwrap();
        let detected = p::detect(&input).unwrap_or_else(|| panic!("{}: no format", path.display()));
        assert_eq!(detected.format, format!("linstor-{kind}"), "{}", path.display());
    }
}
