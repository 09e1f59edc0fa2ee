//! Pipeline spec strings, in the spirit of FAISS's index factory.
//!
//! ```text
//! spec      := stage ( ">" stage )*
//! stage     := transform | quantizer
//! transform := "pca:" N | "mrl:" N | "rot" | "itq" | "opq:" M
//! quantizer := "f32" | "f16" | "int8" | "int4" | "bin"
//!            | "pq:" M [ "x" B ]        (B = 8 or 4, default 8)
//!            | "rabitq" [ ":" B ]       (B = 1..8, default 1)
//!            | "sparse:" K
//! ```
//!
//! Transforms come first; at most one quantizer, last (none means `f32`).
//! Examples: `int8`, `bin`, `mrl:128>int8`, `pca:128>rabitq:2`,
//! `opq:48>pq:48x8`, `itq>bin`. [`Spec::parse`] and `Display` are
//! inverses (the display is canonical: defaults written out).

use std::fmt;

use crate::error::{Error, Result};

/// One stage of a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// PCA to `n` dimensions.
    Pca(usize),
    /// Matryoshka prefix of `n` dimensions.
    Mrl(usize),
    /// Random rotation.
    Rot,
    /// ITQ rotation.
    Itq,
    /// OPQ rotation for `m` sub-spaces.
    Opq(usize),
    /// Raw f32.
    F32,
    /// Raw f16.
    F16,
    /// 8-bit scalar.
    Int8,
    /// 4-bit scalar.
    Int4,
    /// Sign bits, Hamming search.
    Bin,
    /// Product quantisation, `m` sub-spaces of `bits` bits.
    Pq {
        /// Sub-spaces.
        m: usize,
        /// Bits per sub-space code.
        bits: u32,
    },
    /// RaBitQ with `bits` per dimension.
    RaBitQ(u32),
    /// Sparse top-k.
    Sparse(usize),
}

impl Stage {
    /// Whether this stage is a transform (not a quantizer).
    pub fn is_transform(self) -> bool {
        matches!(
            self,
            Stage::Pca(_)
                | Stage::Mrl(_)
                | Stage::Rot
                | Stage::Itq
                | Stage::Opq(_)
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Pca(n) => write!(f, "pca:{n}"),
            Stage::Mrl(n) => write!(f, "mrl:{n}"),
            Stage::Rot => f.write_str("rot"),
            Stage::Itq => f.write_str("itq"),
            Stage::Opq(m) => write!(f, "opq:{m}"),
            Stage::F32 => f.write_str("f32"),
            Stage::F16 => f.write_str("f16"),
            Stage::Int8 => f.write_str("int8"),
            Stage::Int4 => f.write_str("int4"),
            Stage::Bin => f.write_str("bin"),
            Stage::Pq { m, bits } => write!(f, "pq:{m}x{bits}"),
            Stage::RaBitQ(b) => write!(f, "rabitq:{b}"),
            Stage::Sparse(k) => write!(f, "sparse:{k}"),
        }
    }
}

/// A parsed pipeline spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Transforms, in order.
    pub transforms: Vec<Stage>,
    /// The quantizer.
    pub quantizer: Stage,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.transforms {
            write!(f, "{t}>")?;
        }
        write!(f, "{}", self.quantizer)
    }
}

fn num(spec: &str, tok: &str, v: Option<&str>, what: &str) -> Result<usize> {
    let err =
        |msg: String| Error::Spec { spec: spec.into(), token: tok.into(), msg };
    let v = v.ok_or_else(|| err(format!("needs {what}, e.g. {tok}:64")))?;
    let n: usize = v
        .parse()
        .map_err(|_| err(format!("{v:?} is not a whole number ({what})")))?;
    if n == 0 {
        return Err(err(format!("{what} must be positive")));
    }
    Ok(n)
}

impl Spec {
    /// Parses a spec; errors name the offending token.
    pub fn parse(spec: &str) -> Result<Spec> {
        let s = spec.trim();
        if s.is_empty() {
            return Err(Error::Spec {
                spec: spec.into(),
                token: String::new(),
                msg: "empty spec (try int8, bin, pq:48x8, pca:128>rabitq:2)"
                    .into(),
            });
        }
        let mut stages = Vec::new();
        for tok in s.split('>').map(str::trim) {
            let err = |msg: &str| Error::Spec {
                spec: spec.into(),
                token: tok.into(),
                msg: msg.into(),
            };
            let (name, arg) = match tok.split_once(':') {
                Some((a, b)) => (a.trim(), Some(b.trim())),
                None => (tok, None),
            };
            let no_arg = |st: Stage| {
                if arg.is_some() {
                    Err(err("takes no argument"))
                } else {
                    Ok(st)
                }
            };
            let st = match name.to_ascii_lowercase().as_str() {
                "pca" => Stage::Pca(num(spec, tok, arg, "a dimension")?),
                "mrl" => Stage::Mrl(num(spec, tok, arg, "a dimension")?),
                "rot" => no_arg(Stage::Rot)?,
                "itq" => no_arg(Stage::Itq)?,
                "opq" => Stage::Opq(num(spec, tok, arg, "sub-spaces")?),
                "f32" => no_arg(Stage::F32)?,
                "f16" => no_arg(Stage::F16)?,
                "int8" | "sq8" => no_arg(Stage::Int8)?,
                "int4" | "sq4" => no_arg(Stage::Int4)?,
                "bin" => no_arg(Stage::Bin)?,
                "sparse" => Stage::Sparse(num(spec, tok, arg, "k")?),
                "rabitq" => {
                    let b = match arg {
                        None => 1,
                        Some(_) => num(spec, tok, arg, "bits")?,
                    };
                    if b > 8 {
                        return Err(err("bits must be 1..=8"));
                    }
                    Stage::RaBitQ(b as u32)
                }
                "pq" => {
                    let a =
                        arg.ok_or_else(|| err("needs M[xB], e.g. pq:48x8"))?;
                    let (m, b) = match a.split_once(['x', 'X']) {
                        Some((m, b)) => (m, Some(b)),
                        None => (a, None),
                    };
                    let m = num(spec, tok, Some(m), "sub-spaces")?;
                    let bits = match b {
                        None => 8,
                        Some(b) => num(spec, tok, Some(b), "bits")?,
                    };
                    if bits != 8 && bits != 4 {
                        return Err(err("PQ bits must be 8 or 4"));
                    }
                    Stage::Pq { m, bits: bits as u32 }
                }
                "" => return Err(err("empty stage (two '>' in a row?)")),
                _ => {
                    return Err(err(
                        "unknown stage (pca, mrl, rot, itq, opq, f32, f16, \
                         int8, int4, bin, pq, rabitq, sparse)",
                    ));
                }
            };
            stages.push((tok, st));
        }
        let n = stages.len();
        let mut transforms = Vec::new();
        let mut quantizer = Stage::F32;
        for (i, (tok, st)) in stages.into_iter().enumerate() {
            if st.is_transform() {
                transforms.push(st);
            } else if i + 1 == n {
                quantizer = st;
            } else {
                return Err(Error::Spec {
                    spec: spec.into(),
                    token: tok.into(),
                    msg: "a quantizer must be the last stage".into(),
                });
            }
        }
        Ok(Spec { transforms, quantizer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "int8",
            "pca:128>rabitq:2",
            "opq:48>pq:48x8",
            "mrl:128>int8",
            "itq>bin",
            "rot>bin",
            "pq:96x4",
            "sparse:32",
            "pca:64>f32",
        ] {
            assert_eq!(Spec::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Spec::parse("pq:48").unwrap().to_string(), "pq:48x8");
        assert_eq!(Spec::parse("rabitq").unwrap().to_string(), "rabitq:1");
        assert_eq!(Spec::parse("mrl:64").unwrap().to_string(), "mrl:64>f32");
    }

    #[test]
    fn errors_name_the_token() {
        let cases = [
            ("pca:abc>int8", "pca:abc"),
            ("pca:128>foo", "foo"),
            ("int8>pca:64", "int8"),
            ("pq:48x5", "pq:48x5"),
            ("pca:0", "pca:0"),
            ("bin:3", "bin:3"),
            ("int8>>bin", ""),
            ("rabitq:9", "rabitq:9"),
        ];
        for (s, tok) in cases {
            match Spec::parse(s) {
                Err(Error::Spec { token, .. }) => assert_eq!(token, tok, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }
}
