//! Test helpers: a tiny GGUF writer for hand-built files, and the shared
//! data folder.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared reference folder: `$RYOT_SHARED` or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    ryot_paths::shared_dir_for(env!("CARGO_MANIFEST_DIR"))
}

pub fn string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// One metadata entry: key, type id, raw value bytes.
pub fn kv(key: &str, ty: u32, value: &[u8]) -> Vec<u8> {
    let mut v = string(key.as_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(value);
    v
}

pub fn kv_str(key: &str, s: &str) -> Vec<u8> {
    kv(key, 8, &string(s.as_bytes()))
}

pub fn kv_u32(key: &str, x: u32) -> Vec<u8> {
    kv(key, 4, &x.to_le_bytes())
}

/// An array value: element type, count, raw element bytes.
pub fn array(elem: u32, n: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub offset: u64,
}

pub fn tensor(name: &str, dims: &[u64], ty: u32, offset: u64) -> Tensor {
    Tensor { name: name.into(), dims: dims.to_vec(), ty, offset }
}

/// A GGUF file under construction.
pub struct Tiny {
    pub magic: [u8; 4],
    pub version: u32,
    pub kvs: Vec<Vec<u8>>,
    pub tensors: Vec<Tensor>,
    pub align: usize,
    pub data: Vec<u8>,
}

impl Tiny {
    pub fn new() -> Tiny {
        Tiny {
            magic: *b"GGUF",
            version: 3,
            kvs: Vec::new(),
            tensors: Vec::new(),
            align: 32,
            data: Vec::new(),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut v = self.magic.to_vec();
        v.extend_from_slice(&self.version.to_le_bytes());
        v.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        v.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for e in &self.kvs {
            v.extend_from_slice(e);
        }
        for t in &self.tensors {
            v.extend_from_slice(&string(t.name.as_bytes()));
            v.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                v.extend_from_slice(&d.to_le_bytes());
            }
            v.extend_from_slice(&t.ty.to_le_bytes());
            v.extend_from_slice(&t.offset.to_le_bytes());
        }
        if !self.tensors.is_empty() || !self.data.is_empty() {
            while !v.len().is_multiple_of(self.align) {
                v.push(0);
            }
        }
        v.extend_from_slice(&self.data);
        v
    }
}

/// A small valid file using every metadata type, a nested array and two
/// tensors (F32 [4, 2] at 0, Q8_0 [32, 1] at 32); its data ends the file.
pub fn valid_small() -> Tiny {
    let mut t = Tiny::new();
    t.kvs = vec![
        kv_str("general.architecture", "llama"),
        kv("u8", 0, &[7]),
        kv("i8", 1, &[0xff]),
        kv("u16", 2, &500u16.to_le_bytes()),
        kv("i16", 3, &(-500i16).to_le_bytes()),
        kv_u32("u32", 70_000),
        kv("i32", 5, &(-70_000i32).to_le_bytes()),
        kv("f32", 6, &1.5f32.to_le_bytes()),
        kv("bool", 7, &[1]),
        kv("u64", 10, &(1u64 << 40).to_le_bytes()),
        kv("i64", 11, &(-(1i64 << 40)).to_le_bytes()),
        kv("f64", 12, &0.25f64.to_le_bytes()),
        kv("strs", 9, &array(8, 2, &[string(b"a"), string(b"bc")].concat())),
        kv(
            "f32s",
            9,
            &array(6, 2, &[1f32.to_le_bytes(), 2f32.to_le_bytes()].concat()),
        ),
        kv(
            "nested",
            9,
            &array(9, 2, &[array(0, 1, &[5]), array(0, 2, &[6, 7])].concat()),
        ),
    ];
    t.tensors = vec![
        tensor("a.weight", &[4, 2], 0, 0),
        tensor("b.weight", &[32, 1], 8, 32),
    ];
    t.data = (0..66u8).collect();
    t
}
