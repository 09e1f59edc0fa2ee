//! bitnet.cpp's `bitnet-b1.58` architecture on synthetic files written by
//! Ryot's own synth tool (no real file of that layout can be had here):
//! the same ternary weights stored as I2_S (bitnet.cpp) and as TQ2_0 give
//! the same logits, in the file layouts and in Ryot's panel layout.

use ryot_engine::synth::{Shape, write_synth};
use ryot_gguf::Gguf;
use ryot_model::{Arch, KvType, LoadOptions, Logits, Model, TernaryLayout};
use ryot_quant::QuantType;

fn tiny(arch: &'static str) -> Shape {
    Shape {
        name: "tiny",
        arch,
        n_embd: 256,
        n_ff: 512,
        n_layer: 2,
        n_head: 4,
        n_head_kv: 2,
        n_vocab: 600,
        n_ctx: 256,
        rope_base: 10000.0,
        eps: 1e-5,
        qkv_bias: false,
        embd_type: |_| QuantType::F16,
    }
}

fn logits(path: &std::path::Path, ternary: TernaryLayout) -> (Arch, Vec<f32>) {
    let g = Gguf::open(path).unwrap();
    let m = Model::load(&g, LoadOptions { ternary }, 2).unwrap();
    let mut c = m.new_cache(64, KvType::F16).unwrap();
    let ids: Vec<u32> = (0..20).map(|i| 1 + (i * 29) % 599).collect();
    (m.config().arch, m.forward(&ids, &mut c, Logits::All).unwrap())
}

#[test]
fn i2s_and_tq2_0_files_of_the_same_weights_agree() {
    let dir = std::env::temp_dir()
        .join(format!("ryot-synth-b158-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shape = tiny("bitnet-b1.58");
    let i2s = dir.join("i2s.gguf");
    let tq2 = dir.join("tq2.gguf");
    write_synth(&shape, QuantType::I2_S, &i2s, 9, |_, _| {}).unwrap();
    write_synth(&shape, QuantType::TQ2_0, &tq2, 9, |_, _| {}).unwrap();
    let g = Gguf::open(&i2s).unwrap();
    assert_eq!(g.architecture(), Some("bitnet-b1.58"));
    assert_eq!(
        g.tensor("blk.0.ffn_up.weight").unwrap().ty().known(),
        Some(QuantType::I2_S)
    );
    let (arch, a) = logits(&i2s, TernaryLayout::Native);
    assert_eq!(arch, Arch::BitnetB158);
    let (_, b) = logits(&tq2, TernaryLayout::Native);
    let (_, c) = logits(&i2s, TernaryLayout::Panels);
    assert!(a.iter().all(|v| v.is_finite()));
    let max_abs = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (name, other) in [("tq2_0", &b), ("i2_s panels", &c)] {
        let diff = a
            .iter()
            .zip(other.iter())
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        // Integer sums are exact in both layouts; only the f32 combine of
        // per-block (TQ2_0) vs per-tensor (I2_S) scales may round apart.
        assert!(diff <= 1e-4 * max_abs.max(1.0), "{name}: {diff}");
    }
    // The same weights under llama.cpp's `bitnet` (SiLU) differ: the FFN
    // activation really is squared ReLU here.
    let plain = dir.join("plain.gguf");
    write_synth(&tiny("bitnet"), QuantType::TQ2_0, &plain, 9, |_, _| {})
        .unwrap();
    let (arch, d) = logits(&plain, TernaryLayout::Native);
    assert_eq!(arch, Arch::Bitnet);
    assert!(a.iter().zip(&d).any(|(x, y)| (x - y).abs() > 1e-3));
    std::fs::remove_dir_all(&dir).unwrap();
}
