//! Codec round trips, file formats (golden v1 and v2 files, corrupt and truncated
//! files), and bad input.

use std::path::PathBuf;

use ryot_compress::container;
use ryot_compress::index::{load_codec, save_codec};
use ryot_compress::search::exact_search;
use ryot_compress::{Error, Index, Matrix, Pipeline, TierKind, TrainOptions};

mod common;
use common::data;

const SPECS: [&str; 19] = [
    "f32",
    "f16",
    "int8",
    "int4",
    "bin",
    "itq>bin",
    "rot>bin",
    "pq:8x8",
    "pq:8x4",
    "pq:8x4fs",
    "opq:4>pq:4x4fs",
    "opq:4>pq:4x8",
    "rabitq:1",
    "pca:16>rabitq:3",
    "mrl:24>int8",
    "pca:16>multi:4,8>int8",
    "multi:8,16>int4",
    "sparse:8",
    "rq:4",
];

fn tmp(name: &str) -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("ryc-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn opts() -> TrainOptions {
    TrainOptions {
        seed: 1,
        kmeans_iters: 8,
        opq_iters: 3,
        itq_iters: 10,
        pq_cosine: true,
        rq_beam: 4,
        rq_kmeans_iters: 4,
        rq_refine: 2,
    }
}

/// [`opts`] with inner-product PQ scoring (what format-1 and the first
/// format-2 files hold).
fn opts_ip() -> TrainOptions {
    TrainOptions { pq_cosine: false, ..opts() }
}

#[test]
fn every_codec_round_trips_through_its_file() {
    let x = data(400, 32, 1);
    let q = data(5, 32, 2);
    for spec in SPECS {
        let p = Pipeline::train(spec, &x, opts()).unwrap();
        let codes = p.encode(&x).unwrap();
        assert_eq!(codes.len(), x.rows * p.code_bytes(), "{spec}");
        let path = tmp(&format!("{}.ryc", spec.replace(['>', ':'], "_")));
        save_codec(&p, &path).unwrap();
        let back = load_codec(&path).unwrap();
        assert_eq!(back.spec(), p.spec());
        assert_eq!(back.encode(&x).unwrap(), codes, "{spec}: same codes");
        let a = p.search(&codes, &q, 5).unwrap();
        let b = back.search(&codes, &q, 5).unwrap();
        assert_eq!(a, b, "{spec}: same hits");
    }
}

#[test]
fn decode_is_close_for_fine_codecs() {
    let x = data(300, 32, 3);
    for (spec, tol) in [("f32", 0.0), ("f16", 1e-3), ("int8", 0.05)] {
        let p = Pipeline::train(spec, &x, opts()).unwrap();
        let codes = p.encode(&x).unwrap();
        let cb = p.code_bytes();
        let mut out = vec![0f32; 32];
        for i in 0..x.rows {
            p.codec.decode(&codes[i * cb..(i + 1) * cb], &mut out);
            let err: f32 = out
                .iter()
                .zip(x.row(i))
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt();
            assert!(err <= tol, "{spec}: row {i} error {err}");
        }
    }
}

#[test]
fn codes_only_search_beats_chance_and_ranks_well() {
    // Every codec's top-10 must overlap the exact top-10 at least four
    // times the 10/400 chance level (32-bit sign codes are the weakest);
    // f32 must be exact.
    let x = data(400, 32, 4);
    let q = data(20, 32, 5);
    let (truth, _) = exact_search(&x, &q, 10).unwrap();
    for spec in SPECS {
        let p = Pipeline::train(spec, &x, opts()).unwrap();
        let codes = p.encode(&x).unwrap();
        let hits = p.search(&codes, &q, 10).unwrap();
        let found: Vec<u32> =
            hits.iter().flat_map(|h| h.iter().map(|x| x.0)).collect();
        let truth_i: Vec<i32> = truth.iter().map(|&v| v as i32).collect();
        let r = ryot_compress::search::recall_at(&found, 10, &truth_i, 10, 10);
        let floor = if spec == "f32" { 1.0 } else { 0.1 };
        assert!(r >= floor, "{spec}: recall {r}");
    }
}

fn small_index_with(spec: &str) -> Index {
    small_index_opts(spec, opts_ip())
}

fn small_index_opts(spec: &str, o: TrainOptions) -> Index {
    let x = data(64, 16, 9);
    let p = Pipeline::train(spec, &x, o).unwrap();
    let mut idx = Index::new(p, TierKind::F32);
    let ids: Vec<u64> = (0..64).map(|i| 1_000_000_007 * i + 3).collect();
    idx.add(&ids[..40], &x.head(40)).unwrap();
    let tail: Vec<usize> = (40..64).collect();
    idx.add(&ids[40..], &x.select(&tail)).unwrap();
    idx
}

fn small_index() -> Index {
    small_index_with("pq:4x4")
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

#[test]
fn golden_v1_index_file_still_loads() {
    // Written by format 1 (kept byte for byte): it must load and answer
    // exactly as a freshly built index.
    let bytes = std::fs::read(golden("v1-small.ryi")).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    let idx = Index::from_bytes(&bytes).unwrap();
    assert_eq!(idx.len(), 64);
    let q = data(3, 16, 10);
    for c in [None, Some(20)] {
        let a = idx.search(&q, 5, c).unwrap();
        let b = small_index().search(&q, 5, c).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn golden_v2_index_files() {
    // Format 2: row-major and fast-scan layouts; regenerate deliberately
    // with RYOT_BLESS=1.
    for (name, spec, o) in [
        ("v2-small.ryi", "pq:4x4", opts_ip()),
        ("v2-small-fs.ryi", "pq:4x4fs", opts_ip()),
        // Cosine-scored PQ: the same format, tag `pq:4x4;cos`.
        ("v2-small-cos.ryi", "pq:4x4", opts()),
        // Residual quantizer with its length byte: tag `rq:3;cos`
        // (written before codebook refinement, which changes the trained
        // values, not the format: trained without it).
        ("v2-small-rq.ryi", "rq:3", TrainOptions { rq_refine: 0, ..opts() }),
    ] {
        let fresh = small_index_opts(spec, o).to_bytes();
        if std::env::var_os("RYOT_BLESS").is_some() {
            std::fs::write(golden(name), &fresh).unwrap();
        }
        let bytes = std::fs::read(golden(name)).expect("golden (RYOT_BLESS)");
        assert_eq!(bytes, fresh, "{name}: format 2 bytes changed");
        let idx = Index::from_bytes(&bytes).unwrap();
        assert_eq!(idx.pipeline().spec(), spec);
        let q = data(3, 16, 10);
        let a = idx.search(&q, 5, Some(20)).unwrap();
        let b = small_index_opts(spec, o).search(&q, 5, Some(20)).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn multi_resolution_prefixes_are_the_shorter_codes() {
    use ryot_compress::codec::multi::Multi;
    let x = data(600, 32, 31);
    let q = data(15, 32, 32);
    let multi = Pipeline::train("pca:16>multi:4,8>int8", &x, opts()).unwrap();
    assert_eq!(multi.spec(), "pca:16>multi:4,8>int8");
    let codes = multi.encode(&x).unwrap();
    let m =
        multi.codec.as_any().downcast_ref::<Multi>().expect("a Multi codec");
    assert_eq!(m.levels(), &[4, 8, 16]);
    let qp = multi.prepare_queries(&q).unwrap();
    for (li, l) in [4usize, 8].into_iter().enumerate() {
        // The first l bytes of each code are the pca:16>mrl:l>int8 code.
        let short =
            Pipeline::train(&format!("pca:16>mrl:{l}>int8"), &x, opts())
                .unwrap();
        let sc = short.encode(&x).unwrap();
        for i in 0..x.rows {
            assert_eq!(&codes[i * 16..i * 16 + l], &sc[i * l..(i + 1) * l]);
        }
        // Searching level 0 alone is searching the short codes.
        if li == 0 {
            let want = short.search(&sc, &q, 10).unwrap();
            for (qi, w) in want.iter().enumerate() {
                let got = m.search_level(qp.row(qi), &codes, x.rows, 10, 0);
                let a: Vec<u32> = got.iter().map(|h| h.0).collect();
                let b: Vec<u32> = w.iter().map(|h| h.0).collect();
                assert_eq!(a, b);
            }
        }
    }
    // Pipeline search is the full int8 scan; a cascade keeping every
    // row equals it, and one keeping 3k rows agrees better than level 0.
    let full = Pipeline::train("pca:16>int8", &x, opts()).unwrap();
    let fc = full.encode(&x).unwrap();
    assert_eq!(fc, codes);
    let a = full.search(&fc, &q, 10).unwrap();
    assert_eq!(multi.search(&codes, &q, 10).unwrap(), a);
    let agree = |b: &[Vec<(u32, f32)>]| -> usize {
        a.iter()
            .zip(b)
            .map(|(x, y)| {
                y.iter().filter(|h| x.iter().any(|g| g.0 == h.0)).count()
            })
            .sum()
    };
    type Hits = Vec<(u32, f32)>;
    let run = |f: &dyn Fn(&[f32]) -> Hits| -> Vec<Hits> {
        (0..q.rows).map(|i| f(qp.row(i))).collect()
    };
    let all = run(&|v| m.search_cascade(v, &codes, x.rows, 10, x.rows));
    assert_eq!(all, a);
    let c30 = run(&|v| m.search_cascade(v, &codes, x.rows, 10, 30));
    let l0 = run(&|v| m.search_level(v, &codes, x.rows, 10, 0));
    let (ac, a0) = (agree(&c30), agree(&l0));
    assert!(ac > a0 + 20, "cascade {ac}/150, level 0 {a0}/150");
    for bad in
        ["multi:8,4>int8", "multi:40>int8", "multi:3>int4", "multi:32>int8"]
    {
        assert!(Pipeline::train(bad, &x, opts()).is_err(), "{bad}");
    }
}

#[test]
fn fast_scan_index_matches_plain_4bit_pq() {
    // Same training seed: pq:8x4fs and pq:8x4 hold identical codes; the
    // fast-scan search (u8 tables, re-ranked by float ADC) finds nearly
    // the same top 10, and add/save/reload keep it valid.
    let x = data(777, 32, 21);
    let q = data(20, 32, 22);
    let ids: Vec<u64> = (0..777).map(|i| 3 * i + 1).collect();
    let mut res = Vec::new();
    for spec in ["pq:8x4", "pq:8x4fs"] {
        let p = Pipeline::train(spec, &x, opts()).unwrap();
        let mut idx = Index::new(p, TierKind::None);
        idx.add(&ids[..333], &x.head(333)).unwrap();
        let rest: Vec<usize> = (333..777).collect();
        idx.add(&ids[333..], &x.select(&rest)).unwrap();
        let back = Index::from_bytes(&idx.to_bytes()).unwrap();
        let h = back.search(&q, 10, None).unwrap();
        assert_eq!(h, idx.search(&q, 10, None).unwrap());
        res.push(h);
    }
    let mut agree = 0;
    for (a, b) in res[0].iter().zip(&res[1]) {
        for h in b {
            if let Some(g) = a.iter().find(|g| g.id == h.id) {
                // The re-rank scores a code as the float scan does (by
                // cosine here: unit-length data), to the bit.
                assert_eq!(g.score.to_bits(), h.score.to_bits(), "id {}", h.id);
                agree += 1;
            }
        }
    }
    assert!(agree >= 190, "fast-scan agrees on {agree}/200");
}

#[test]
fn index_add_search_reload_and_rescore() {
    let x = data(500, 32, 11);
    let q = data(10, 32, 12);
    let p = Pipeline::train("pq:8x4", &x, opts()).unwrap();
    for tier in [TierKind::F32, TierKind::Int8] {
        let p = Pipeline::train("pq:8x4", &x, opts()).unwrap();
        let mut idx = Index::new(p, tier);
        let ids: Vec<u64> = (0..500).map(|i| 7 * i + 100).collect();
        idx.add(&ids[..300], &x.head(300)).unwrap();
        let path = tmp(&format!("idx-{tier:?}.ryi"));
        idx.save(&path).unwrap();
        for mmap in [false, true] {
            let mut back = Index::open(&path, mmap).unwrap();
            assert_eq!(back.len(), 300);
            let rest: Vec<usize> = (300..500).collect();
            back.add(&ids[300..], &x.select(&rest)).unwrap();
            // Rescored f32 search with all candidates is exact search.
            let hits = back.search(&q, 10, Some(500)).unwrap();
            let (truth, _) = exact_search(&x, &q, 10).unwrap();
            let mut agree = 0;
            for (h, t) in hits.iter().zip(truth.chunks(10)) {
                for hit in h {
                    let row = (hit.id - 100) / 7;
                    agree += t.contains(&(row as u32)) as usize;
                }
            }
            let need = if tier == TierKind::F32 { 100 } else { 90 };
            assert!(agree >= need, "{tier:?} mmap={mmap}: {agree}/100");
            assert!(matches!(
                back.add(&[100], &x.head(1)),
                Err(Error::Invalid(_))
            ));
            back.save(&path).unwrap();
            assert_eq!(Index::open(&path, false).unwrap().len(), 500);
            idx.save(&path).unwrap();
        }
    }
    let idx = Index::new(p, TierKind::None);
    assert!(matches!(idx.search(&q, 1, None), Err(Error::Empty(_))));
}

#[test]
fn corrupt_truncated_and_wrong_version_files() {
    let bytes = small_index().to_bytes();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bytes[..bytes.len() - 1].to_vec(), "truncated"),
        (bytes[..30].to_vec(), "truncated"),
        (Vec::new(), "truncated"),
        (
            {
                let mut b = bytes.clone();
                b[200] ^= 1;
                b
            },
            "corrupt",
        ),
        (
            {
                let mut b = bytes.clone();
                b[0] = b'X';
                b
            },
            "corrupt",
        ),
        (
            {
                let mut b = bytes.clone();
                b[8] = 9;
                b
            },
            "version",
        ),
        (
            {
                let mut b = bytes.clone();
                b.push(0);
                b
            },
            "corrupt",
        ),
    ];
    for (b, want) in cases {
        let e = Index::from_bytes(&b).unwrap_err();
        let ok = match want {
            "truncated" => matches!(e, Error::Truncated(_)),
            "corrupt" => matches!(e, Error::Corrupt(_)),
            _ => matches!(e, Error::Version { found: 9, supported: 2 }),
        };
        assert!(ok, "{want}: got {e}");
    }
    // A payload that passes the checksum but is cut short inside.
    let payload = &bytes[container::HEADER..bytes.len() - 10];
    let rebuilt = container::build(container::Kind::Index, payload);
    assert!(matches!(Index::from_bytes(&rebuilt), Err(Error::Truncated(_))));
    // A codec file is not an index file.
    let p = tmp("c.ryc");
    save_codec(&Pipeline::train("int8", &data(10, 4, 1), opts()).unwrap(), &p)
        .unwrap();
    assert!(matches!(Index::open(&p, false), Err(Error::Corrupt(_))));
    assert!(matches!(load_codec(tmp("missing.ryc")), Err(Error::Io { .. })));
}

#[test]
fn bad_input_gives_typed_errors() {
    let x = data(50, 8, 1);
    let p = Pipeline::train("int8", &x, opts()).unwrap();
    assert!(matches!(p.encode(&data(3, 9, 1)), Err(Error::Shape(_))));
    let mut nan = data(3, 8, 1);
    nan.data[10] = f32::NAN;
    assert!(matches!(p.encode(&nan), Err(Error::NonFinite { row: 1, col: 2 })));
    let mut inf = data(3, 8, 1);
    inf.data[0] = f32::INFINITY;
    assert!(matches!(
        Pipeline::train("int8", &inf, opts()),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        Pipeline::train("int8", &Matrix::zeros(0, 8), opts()),
        Err(Error::Empty(_))
    ));
    let codes = p.encode(&x).unwrap();
    assert!(matches!(p.search(&codes, &x, 51), Err(Error::Invalid(_))));
    assert!(matches!(p.search(&codes, &x, 0), Err(Error::Invalid(_))));
    assert!(matches!(p.search(&[], &x, 1), Err(Error::Empty(_))));
    assert!(matches!(
        Pipeline::train("pq:3x8", &x, opts()),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        Pipeline::train("pca:9>int8", &x, opts()),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        Pipeline::train("pca:4>frob", &x, opts()),
        Err(Error::Spec { .. })
    ));
    let mut idx = Index::new(p, TierKind::None);
    assert!(matches!(idx.add(&[1, 1], &x.head(2)), Err(Error::Invalid(_))));
    assert!(matches!(idx.add(&[1], &x.head(2)), Err(Error::Shape(_))));
    idx.add(&[5, 6], &x.head(2)).unwrap();
    assert!(matches!(idx.search(&x, 1, Some(2)), Err(Error::Invalid(_))));
    assert!(matches!(idx.search(&x, 3, None), Err(Error::Invalid(_))));
}

#[test]
fn entropy_coded_index_round_trips_and_is_used_only_when_smaller() {
    // int4 codes of bell-shaped dimensions have ~6.4 bits of order-0
    // entropy per byte; PQ codes are near uniform by construction.
    let x = data(6000, 32, 41);
    let q = data(5, 32, 42);
    let ids: Vec<u64> = (0..6000).map(|i| 5 * i + 2).collect();
    for (spec, pays) in [("int4", true), ("pq:8x4fs", false)] {
        let p = Pipeline::train(spec, &x, opts()).unwrap();
        let mut idx = Index::new(p, TierKind::None);
        idx.add(&ids, &x).unwrap();
        let raw = idx.to_bytes();
        idx.set_entropy_coding(true);
        let coded = idx.to_bytes();
        assert_eq!(coded.len() < raw.len(), pays, "{spec}");
        let back = Index::from_bytes(&coded).unwrap();
        assert_eq!(back.entropy_coding(), pays);
        assert_eq!(back.ids(), idx.ids());
        assert_eq!(
            back.search(&q, 10, None).unwrap(),
            idx.search(&q, 10, None).unwrap()
        );
        // Saved again, still identical bytes.
        assert_eq!(back.to_bytes(), coded);
    }
}

/// PQ trained on unit-length vectors scores a code by the cosine between
/// the query and its reconstruction (`q . x^ / |x^|`, checked against the
/// decoded vectors), keeps that through its file, and scores by inner
/// product when the training vectors are not unit length or when asked.
#[test]
fn pq_scores_unit_data_by_cosine_with_the_reconstruction() {
    use ryot_compress::codec::pq::Pq;
    let x = data(400, 16, 41);
    let q = data(5, 16, 42);
    let mut scaled = x.clone();
    scaled.data.iter_mut().for_each(|v| *v *= 2.0);
    for (spec, train, o, cos) in [
        ("pq:8x8", &x, opts(), true),
        ("pq:8x4", &x, opts(), true),
        ("pq:8x4fs", &x, opts(), true),
        ("pq:8x8", &scaled, opts(), false),
        ("pq:8x8", &x, opts_ip(), false),
    ] {
        let p = Pipeline::train(spec, train, o).unwrap();
        let pq = p.codec.as_any().downcast_ref::<Pq>().expect("a Pq codec");
        assert_eq!(pq.cosine(), cos, "{spec}");
        let codes = p.encode(&x).unwrap();
        let mut dec = vec![0f32; 16];
        let cb = p.code_bytes();
        let hits = p.search(&codes, &q, 7).unwrap();
        for (qi, h) in hits.iter().enumerate() {
            for &(row, score) in h {
                let r = row as usize;
                p.codec.decode(&codes[r * cb..(r + 1) * cb], &mut dec);
                let qr = q.row(qi);
                let dot: f32 = qr.iter().zip(&dec).map(|(a, b)| a * b).sum();
                let len = dec.iter().map(|v| v * v).sum::<f32>().sqrt();
                let want = if cos { dot / len } else { dot };
                assert!(
                    (score - want).abs() <= 1e-5,
                    "{spec}: row {r} scored {score}, expected {want}"
                );
            }
        }
        // The mode survives the codec file.
        let path = tmp(&format!("cos-{}.ryc", spec.replace(':', "_")));
        save_codec(&p, &path).unwrap();
        let back = load_codec(&path).unwrap();
        let again = back.search(&codes, &q, 7).unwrap();
        assert_eq!(hits, again, "{spec}: after reload");
    }
}
