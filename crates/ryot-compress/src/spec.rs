//! Pipeline spec strings, in the spirit of FAISS's index factory.
//!
//! ```text
//! spec      := stage ( ">" stage )*
//! stage     := transform | multi | quantizer
//! multi     := "multi:" L ( "," L )*   (increasing prefix lengths; only
//!                                        right before int8 or int4)
//! transform := "pca:" N | "mrl:" N | "rot" | "itq" | "opq:" M
//! quantizer := "f32" | "f16" | "int8" | "int4" | "bin"
//!            | "pq:" M [ "x" B [ "fs" ] ]  (B = 8 or 4, default 8;
//!                                        "fs": 4-bit fast-scan layout)
//!            | "rq:" M                   (M residual stages of 8 bits)
//!            | "rabitq" [ ":" B ]       (B = 1..8, default 1)
//!            | "sparse:" K
//! ```
//!
//! Transforms come first; at most one quantizer, last (none means `f32`).
//! Examples: `int8`, `bin`, `mrl:128>int8`, `pca:128>rabitq:2`,
//! `opq:48>pq:48x8`, `opq:96>pq:96x4fs`, `itq>bin`. [`Spec::parse`] and `Display` are
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
        /// 4-bit fast-scan layout and kernel.
        fast: bool,
    },
    /// Residual quantisation, `m` stages of 8 bits.
    Rq(usize),
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
            Stage::Pq { m, bits, fast } => {
                write!(f, "pq:{m}x{bits}{}", if *fast { "fs" } else { "" })
            }
            Stage::Rq(m) => write!(f, "rq:{m}"),
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
    /// Multi-resolution prefix levels (`multi:..`; empty: none).
    pub levels: Vec<usize>,
    /// The quantizer.
    pub quantizer: Stage,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.transforms {
            write!(f, "{t}>")?;
        }
        if !self.levels.is_empty() {
            let l: Vec<String> =
                self.levels.iter().map(|l| l.to_string()).collect();
            write!(f, "multi:{}>", l.join(","))?;
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
        let mut levels = Vec::new();
        let toks: Vec<&str> = s.split('>').map(str::trim).collect();
        for (ti, &tok) in toks.iter().enumerate() {
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
            if name.eq_ignore_ascii_case("multi") {
                let a =
                    arg.ok_or_else(|| err("needs levels, e.g. multi:32,64"))?;
                for v in a.split(',') {
                    levels.push(num(spec, tok, Some(v.trim()), "a level")?);
                }
                let next = toks.get(ti + 1).map(|t| t.to_ascii_lowercase());
                let ok = ti + 2 == toks.len()
                    && matches!(
                        next.as_deref(),
                        Some("int8" | "int4" | "sq8" | "sq4")
                    );
                if !ok {
                    return Err(err("multi must come right before a final \
                                    int8 or int4"));
                }
                continue;
            }
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
                "rq" => Stage::Rq(num(spec, tok, arg, "stages")?),
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
                    let (b, fast) = match b {
                        Some(b) => match b.strip_suffix("fs") {
                            Some(b) => (Some(b), true),
                            None => (Some(b), false),
                        },
                        None => (None, false),
                    };
                    let bits = match b {
                        None => 8,
                        Some(b) => num(spec, tok, Some(b), "bits")?,
                    };
                    if bits != 8 && bits != 4 {
                        return Err(err("PQ bits must be 8 or 4"));
                    }
                    if fast && bits != 4 {
                        return Err(err("fast-scan (fs) needs 4-bit codes"));
                    }
                    Stage::Pq { m, bits: bits as u32, fast }
                }
                "" => return Err(err("empty stage (two '>' in a row?)")),
                _ => {
                    return Err(err(
                        "unknown stage (pca, mrl, rot, itq, opq, f32, f16, \
                         int8, int4, bin, pq, rq, rabitq, sparse)",
                    ));
                }
            };
            stages.push((tok, st));
        }
        let n = stages.len();
        if n == 0 {
            return Err(Error::Spec {
                spec: spec.into(),
                token: String::new(),
                msg: "no quantizer after multi".into(),
            });
        }
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
        Ok(Spec { transforms, levels, quantizer })
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
            "opq:96>pq:96x4fs",
            "pca:256>multi:32,64,128>int8",
            "multi:16>int4",
            "sparse:32",
            "pca:64>f32",
            "rq:47",
            "pca:128>rq:11",
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
            ("pq:48x8fs", "pq:48x8fs"),
            ("multi:32>pq:8", "multi:32"),
            ("multi:32,x>int8", "multi:32,x"),
            ("multi:32", "multi:32"),
        ];
        for (s, tok) in cases {
            match Spec::parse(s) {
                Err(Error::Spec { token, .. }) => assert_eq!(token, tok, "{s}"),
                other => panic!("{s}: {other:?}"),
            }
        }
    }
}
