//! Server time of the Sites view at 5,000 nodes: the view computed from the store (filter, sort,
//! page, roll-up) and serialised to the JSON the page fetches. `cargo bench -p nodewright-ui`.

#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use nodewright_ui::views::{NodeQuery, sites};

fn bench(c: &mut Criterion) {
    let store = nodewright_ui::store::fixture::site(5_000);
    let mut group = c.benchmark_group("sites view, 5,000 nodes");
    group.sample_size(30);
    group.bench_function("first page, by name", |b| {
        b.iter(|| serde_json::to_vec(&sites(&store, &NodeQuery::default()).ok()).map(|v| v.len()))
    });
    let filtered = NodeQuery {
        state: Some("StorageDegraded".into()),
        q: Some("edge-1".into()),
        sort: Some("lastRun".into()),
        dir: Some("desc".into()),
        page: Some(2),
        ..NodeQuery::default()
    };
    group.bench_function("filtered, by last run, page 2", |b| {
        b.iter(|| serde_json::to_vec(&sites(&store, &filtered).ok()).map(|v| v.len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
