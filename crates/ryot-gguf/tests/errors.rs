//! Hand-built GGUF files: every error path gives its typed error, and no
//! truncation or mutation of a valid file panics.

mod common;

use common::*;
use proptest::prelude::*;
use ryot_gguf::{
    Array, Gguf, GgufErrorKind as K, TensorType, Value, ValueType,
};
use ryot_quant::QuantType;

fn err(bytes: &[u8]) -> K {
    match Gguf::from_bytes(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            // Every message must be printable and say something.
            assert!(!e.to_string().is_empty());
            e.into_kind()
        }
    }
}

#[test]
fn valid_small_file_reads_back() {
    let g = Gguf::from_bytes(&valid_small().build()).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    let m = g.metadata();
    assert_eq!(m.len(), 15);
    assert_eq!(m.get_u8("u8").unwrap(), 7);
    assert_eq!(m.get_i8("i8").unwrap(), -1);
    assert_eq!(m.get_u16("u16").unwrap(), 500);
    assert_eq!(m.get_i16("i16").unwrap(), -500);
    assert_eq!(m.get_u32("u32").unwrap(), 70_000);
    assert_eq!(m.get_i32("i32").unwrap(), -70_000);
    assert_eq!(m.get_f32("f32").unwrap(), 1.5);
    assert!(m.get_bool("bool").unwrap());
    assert_eq!(m.get_u64("u64").unwrap(), 1 << 40);
    assert_eq!(m.get_i64("i64").unwrap(), -(1 << 40));
    assert_eq!(m.get_f64("f64").unwrap(), 0.25);
    assert_eq!(m.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(m.get_str_array("strs").unwrap(), ["a", "bc"]);
    assert_eq!(m.get_f32_array("f32s").unwrap(), [1.0, 2.0]);
    assert_eq!(m.get_uint("u8").unwrap(), 7);
    assert_eq!(
        m.get_array("nested").unwrap(),
        &Array::Array(vec![Array::U8(vec![5]), Array::U8(vec![6, 7])])
    );
    assert_eq!(m.get("u16"), Some(&Value::U16(500)));
    assert!(matches!(
        m.get_u32("u8").unwrap_err().kind(),
        K::WrongType { expected: "uint32", got: ValueType::U8, .. }
    ));
    assert!(matches!(
        m.get_uint("i8").unwrap_err().kind(),
        K::WrongType { .. }
    ));
    assert!(matches!(
        m.get_str("nope").unwrap_err().kind(),
        K::MissingKey { .. }
    ));

    let a = g.tensor("a.weight").unwrap();
    assert_eq!(a.dims(), [4, 2]);
    assert_eq!(a.ty(), TensorType::Known(QuantType::F32));
    assert_eq!(a.byte_size().unwrap(), 32);
    assert_eq!(
        g.tensor_data("a.weight").unwrap(),
        &(0..32).collect::<Vec<u8>>()[..]
    );
    let b = &g.tensors()[1];
    assert_eq!((b.ty(), b.offset()), (TensorType::Known(QuantType::Q8_0), 32));
    assert_eq!(
        g.tensor_data("b.weight").unwrap(),
        &(32..66).collect::<Vec<u8>>()[..]
    );
    assert!(matches!(
        g.tensor_data("c").unwrap_err().kind(),
        K::TensorNotFound { .. }
    ));
}

#[test]
fn version_2_is_read() {
    let mut t = valid_small();
    t.version = 2;
    assert_eq!(Gguf::from_bytes(&t.build()).unwrap().version(), 2);
}

#[test]
fn bad_magic() {
    let mut t = valid_small();
    t.magic = *b"GGML";
    assert!(matches!(err(&t.build()), K::BadMagic { got } if &got == b"GGML"));
}

#[test]
fn unsupported_versions() {
    for (v, hint) in
        [(1, "re-convert"), (4, ""), (3u32.swap_bytes(), "big-endian")]
    {
        let mut t = valid_small();
        t.version = v;
        let k = err(&t.build());
        assert!(
            matches!(k, K::UnsupportedVersion { version, .. } if version == v)
        );
        assert!(k.to_string().contains(hint), "{k}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let full = valid_small().build();
    for n in 0..full.len() {
        match err(&full[..n]) {
            K::Truncated { .. }
            | K::TooLarge { .. }
            | K::TensorOutOfBounds { .. } => {}
            k => panic!("prefix {n}: unexpected {k}"),
        }
    }
}

fn header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&3u32.to_le_bytes());
    v.extend_from_slice(&n_tensors.to_le_bytes());
    v.extend_from_slice(&n_kv.to_le_bytes());
    v
}

#[test]
fn huge_counts_and_lengths() {
    let mut v = header(u64::MAX, 0);
    v.resize(4096, 0);
    assert!(matches!(err(&v), K::TooLarge { offset: 8, got: u64::MAX, .. }));
    let mut v = header(0, 1 << 40);
    v.resize(4096, 0);
    assert!(matches!(err(&v), K::TooLarge { offset: 16, .. }));
    // A key length of 2^62.
    let mut v = header(0, 1);
    v.extend_from_slice(&(1u64 << 62).to_le_bytes());
    v.resize(4096, 0);
    assert!(matches!(err(&v), K::TooLarge { offset: 24, .. }));
    // A string value longer than the file.
    let mut v = header(0, 1);
    v.extend(kv("s", 8, &(1000u64).to_le_bytes()));
    assert!(matches!(err(&v), K::Truncated { needed: 1000, .. }));
    // An array of 2^60 u32.
    let mut v = header(0, 1);
    v.extend(kv("a", 9, &array(4, 1 << 60, &[0; 64])));
    assert!(matches!(err(&v), K::TooLarge { got, .. } if got == 1 << 60));
    // An array of 2^40 strings.
    let mut v = header(0, 1);
    v.extend(kv("a", 9, &array(8, 1 << 40, &[0; 64])));
    assert!(matches!(err(&v), K::TooLarge { .. }));
}

#[test]
fn bad_value_types_utf8_and_nesting() {
    let mut v = header(0, 1);
    v.extend(kv("x", 13, &[0; 8]));
    assert!(matches!(err(&v), K::BadValueType { got: 13, .. }));
    let mut v = header(0, 1);
    v.extend(kv("x", 9, &array(77, 0, &[])));
    assert!(matches!(err(&v), K::BadValueType { got: 77, .. }));
    let mut v = header(0, 1);
    v.extend(kv("x", 8, &string(&[0xff, 0xfe])));
    assert!(matches!(err(&v), K::InvalidUtf8 { .. }));
    let mut v = header(0, 1);
    v.extend(
        kv("\u{1}\u{ff}", 0, &[0])
            .iter()
            .map(|&b| if b == 0xc3 { 0xff } else { b }),
    );
    assert!(matches!(err(&v), K::InvalidUtf8 { offset: 32, .. }));
    // Arrays nested 20 deep.
    let mut inner = array(0, 0, &[]);
    for _ in 0..20 {
        inner = array(9, 1, &inner);
    }
    let mut v = header(0, 1);
    v.extend(kv("deep", 9, &inner));
    assert!(matches!(err(&v), K::NestingTooDeep { .. }));
}

#[test]
fn duplicate_key() {
    let mut t = valid_small();
    t.kvs.push(kv_u32("u32", 1));
    assert!(
        matches!(err(&t.build()), K::DuplicateKey { key, .. } if key == "u32")
    );
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48] {
        let mut t = valid_small();
        t.kvs.push(kv_u32("general.alignment", a));
        assert!(
            matches!(err(&t.build()), K::BadAlignment { got } if got == a as u64)
        );
    }
    let mut t = valid_small();
    t.kvs.push(kv("general.alignment", 10, &32u64.to_le_bytes()));
    assert!(matches!(
        err(&t.build()),
        K::WrongType { got: ValueType::U64, .. }
    ));
    // A larger alignment is honoured: infos padded to 64.
    let mut t = valid_small();
    t.kvs.push(kv_u32("general.alignment", 64));
    t.align = 64;
    t.tensors[1].offset = 64;
    t.data = vec![9; 64 + 34];
    let g = Gguf::from_bytes(&t.build()).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor_data("b.weight").unwrap(), &[9; 34]);
}

#[test]
fn tensor_offsets_checked() {
    let mut t = valid_small();
    t.tensors[1].offset = 33;
    assert!(matches!(err(&t.build()), K::MisalignedTensor { got: 33, .. }));
    let mut t = valid_small();
    t.tensors[1].offset = 64;
    assert!(matches!(err(&t.build()), K::TensorOutOfBounds { start: 64, .. }));
    let mut t = valid_small();
    t.tensors[1].offset = u64::MAX - 31;
    assert!(matches!(err(&t.build()), K::TensorOutOfBounds { .. }));
    let mut t = valid_small();
    t.tensors[0].dims = vec![4, 16]; // 256 bytes, overlaps b at 32
    t.data.resize(256, 0);
    assert!(matches!(err(&t.build()), K::TensorOverlap { at: 32, .. }));
}

#[test]
fn tensor_dims_checked() {
    let mut t = valid_small();
    t.tensors[0].dims = vec![1; 5];
    assert!(matches!(err(&t.build()), K::BadDimCount { got: 5, .. }));
    let mut t = valid_small();
    t.tensors[0].dims = vec![1 << 40, 1 << 40];
    assert!(matches!(err(&t.build()), K::TooManyElements { .. }));
    let mut t = valid_small();
    t.tensors[0].dims = vec![u64::MAX, 2];
    assert!(matches!(err(&t.build()), K::TooManyElements { .. }));
    // Found by the fuzzer: a zero dim hid an overflowing row count.
    let mut t = valid_small();
    t.tensors[0].dims = vec![0, 1 << 40, 1 << 40];
    assert!(matches!(err(&t.build()), K::TooManyElements { .. }));
    let mut t = valid_small();
    t.tensors[1].dims = vec![33, 1]; // Q8_0 rows must be multiples of 32
    assert!(matches!(
        err(&t.build()),
        K::BadTensorShape { ty: QuantType::Q8_0, .. }
    ));
    let mut t = valid_small();
    t.tensors[1].name = "a.weight".into();
    assert!(matches!(
        err(&t.build()),
        K::DuplicateTensor { name, .. } if name == "a.weight"
    ));
}

/// A file with one I2_S-shaped tensor [128, 2] (type 36) and a F32 one.
fn i2s_file(arch: &str) -> Vec<u8> {
    let mut t = Tiny::new();
    t.kvs = vec![kv_str("general.architecture", arch)];
    let i2s_bytes = 2 * 128 / 4 + 32;
    t.tensors =
        vec![tensor("w", &[128, 2], 36, 0), tensor("norm", &[4], 0, 96)];
    t.data = vec![1; i2s_bytes];
    t.data.resize(96 + 16, 2);
    t.build()
}

#[test]
fn type_36_is_i2s_only_in_bitnet_files() {
    for arch in ["bitnet-b1.58", "bitnet-25"] {
        let g = Gguf::from_bytes(&i2s_file(arch)).unwrap();
        let w = g.tensor("w").unwrap();
        assert_eq!(w.ty(), TensorType::Known(QuantType::I2_S));
        assert_eq!(w.byte_size().unwrap(), 96);
        assert_eq!(g.tensor_data("w").unwrap(), &[1; 96]);
    }
    for arch in ["llama", "bitnet"] {
        let g = Gguf::from_bytes(&i2s_file(arch)).unwrap();
        let w = g.tensor("w").unwrap();
        assert_eq!(w.ty(), TensorType::Unknown(36));
        let e = g.tensor_data("w").unwrap_err();
        assert!(matches!(e.kind(), K::UnsupportedTensorType { id: 36, .. }));
        assert!(e.to_string().contains("bitnet-b1.58"), "{e}");
        assert!(w.byte_size().is_err());
        assert_eq!(g.tensor_data("norm").unwrap(), &[2; 16]);
    }
    // I2_S rows must be multiples of 128.
    let mut t = Tiny::new();
    t.kvs = vec![kv_str("general.architecture", "bitnet-25")];
    t.tensors = vec![tensor("w", &[64, 2], 36, 0)];
    t.data = vec![0; 64];
    assert!(matches!(err(&t.build()), K::BadTensorShape { .. }));
}

#[test]
fn unknown_type_is_opaque() {
    let mut t = valid_small();
    t.tensors[0].ty = 20; // IQ4_NL upstream
    let g = Gguf::from_bytes(&t.build()).unwrap();
    assert_eq!(g.tensors()[0].ty(), TensorType::Unknown(20));
    assert_eq!(g.tensors()[0].to_owned().known_byte_size(), None);
    assert!(matches!(
        g.tensor_data("a.weight").unwrap_err().kind(),
        K::UnsupportedTensorType { id: 20, .. }
    ));
    // Its offset is still checked.
    t.tensors[0].offset = 4096;
    assert!(matches!(err(&t.build()), K::TensorOutOfBounds { .. }));
}

#[test]
fn metadata_only_file_without_padding() {
    let mut t = Tiny::new();
    t.kvs = vec![kv_str("general.architecture", "llama")];
    let g = Gguf::from_bytes(&t.build()).unwrap();
    assert_eq!(g.tensors().len(), 0);
    assert_eq!(g.data_len(), 0);
}

#[test]
fn open_reports_io_errors() {
    let e = Gguf::open("/nonexistent/ryot/model.gguf").unwrap_err();
    assert!(matches!(e.kind(), K::Io { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random byte edits of a valid file give a result or an error, never
    /// a panic; whatever parses has all its tensor data readable.
    #[test]
    fn mutations_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut v = valid_small().build();
        for (i, b) in edits {
            let i = i.index(v.len());
            v[i] = b;
        }
        if do_cut {
            let n = cut.index(v.len());
            v.truncate(n);
        }
        if let Ok(g) = Gguf::from_bytes(&v) {
            for t in g.tensors() {
                if let Ok(d) = g.data_of(t) {
                    prop_assert_eq!(d.len(), t.byte_size().unwrap());
                }
            }
        }
    }
}
