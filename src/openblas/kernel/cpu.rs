//! The CPU's instruction sets, and the instruction set of each OpenBLAS x86-64 kernel: the one
//! place CPU features are detected (the SIMD kernels of `simd/` read them here too).

use std::fmt;

/// Instruction-set families of OpenBLAS x86-64 kernels, lowest to highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum IsaLevel {
    /// SSE3 at most: the generic `Prescott` kernel and older ones.
    Sse3,
    /// SSSE3: `Core2`, `Penryn`, `Atom`.
    Ssse3,
    /// SSE4.2: `Nehalem`.
    Sse42,
    /// AVX: `Sandybridge`, `Bulldozer`.
    Avx,
    /// AVX2 + FMA: `Haswell`, `Zen`.
    Avx2,
    /// AVX-512 F/BW/DQ/VL/CD: `SkylakeX`, `Cooperlake`, `SapphireRapids`.
    Avx512,
}

impl fmt::Display for IsaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            IsaLevel::Sse3 => "SSE3",
            IsaLevel::Ssse3 => "SSSE3",
            IsaLevel::Sse42 => "SSE4.2",
            IsaLevel::Avx => "AVX",
            IsaLevel::Avx2 => "AVX2+FMA",
            IsaLevel::Avx512 => "AVX-512",
        };
        f.write_str(name)
    }
}

/// The CPU features that decide which OpenBLAS kernel (and which of parlinalg's SIMD kernels)
/// can run, as the OS lets this process use them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[allow(missing_docs)] // each field is the CPUID feature of the same name
pub struct CpuFeatures {
    /// `true` on x86-64; on other architectures the check says "unknown".
    pub x86_64: bool,
    pub sse3: bool,
    pub ssse3: bool,
    pub sse4_2: bool,
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512dq: bool,
    pub avx512vl: bool,
    pub avx512cd: bool,
    pub avx512bf16: bool,
}

impl CpuFeatures {
    /// Features of the CPU this process runs on, as the OS lets it use them (CPUID and XCR0,
    /// through `is_x86_feature_detected!`).
    ///
    /// ```
    /// let cpu = parlinalg::kernel::CpuFeatures::detect();
    /// println!("this CPU can run {:?}", cpu.recommended_kernel());
    /// ```
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            CpuFeatures {
                x86_64: true,
                sse3: has!("sse3"),
                ssse3: has!("ssse3"),
                sse4_2: has!("sse4.2"),
                avx: has!("avx"),
                avx2: has!("avx2"),
                fma: has!("fma"),
                avx512f: has!("avx512f"),
                avx512bw: has!("avx512bw"),
                avx512dq: has!("avx512dq"),
                avx512vl: has!("avx512vl"),
                avx512cd: has!("avx512cd"),
                avx512bf16: has!("avx512bf16"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CpuFeatures::default()
        }
    }

    /// The highest kernel family this CPU can run, or `None` off x86-64.
    ///
    /// ```
    /// let cpu = parlinalg::kernel::CpuFeatures::detect();
    /// println!("OpenBLAS kernels up to {:?}", cpu.isa_level());
    /// ```
    pub fn isa_level(&self) -> Option<IsaLevel> {
        if !self.x86_64 {
            return None;
        }
        let level =
            if self.avx512f && self.avx512bw && self.avx512dq && self.avx512vl && self.avx512cd {
                IsaLevel::Avx512
            } else if self.avx2 && self.fma {
                IsaLevel::Avx2
            } else if self.avx {
                IsaLevel::Avx
            } else if self.sse4_2 {
                IsaLevel::Sse42
            } else if self.ssse3 {
                IsaLevel::Ssse3
            } else {
                IsaLevel::Sse3
            };
        Some(level)
    }

    /// The `OPENBLAS_CORETYPE` value to recommend: the best kernel of OpenBLAS 0.3.x this CPU
    /// can run (`Cooperlake` needs AVX-512 BF16 as well), or `None` off x86-64.
    ///
    /// ```
    /// let cpu = parlinalg::kernel::CpuFeatures::detect();
    /// if let Some(kernel) = cpu.recommended_kernel() {
    ///     println!("the best OpenBLAS kernel here: {kernel}");
    /// }
    /// ```
    pub fn recommended_kernel(&self) -> Option<&'static str> {
        Some(match self.isa_level()? {
            IsaLevel::Avx512 if self.avx512bf16 => "Cooperlake",
            IsaLevel::Avx512 => "SkylakeX",
            IsaLevel::Avx2 => "Haswell",
            IsaLevel::Avx => "Sandybridge",
            IsaLevel::Sse42 => "Nehalem",
            IsaLevel::Ssse3 => "Core2",
            IsaLevel::Sse3 => "Prescott",
        })
    }
}

/// The instruction-set family of an OpenBLAS x86-64 core name (as `openblas_get_corename`
/// prints it, any case), or `None` for a name this table does not know.
pub(crate) fn kernel_isa_level(corename: &str) -> Option<IsaLevel> {
    let name = corename.trim().to_ascii_lowercase();
    let level = match name.as_str() {
        "katmai" | "coppermine" | "northwood" | "prescott" | "banias" | "athlon" | "opteron"
        | "opteron_sse3" | "generic" => IsaLevel::Sse3,
        "atom" | "core2" | "penryn" | "dunnington" | "nano" => IsaLevel::Ssse3,
        "nehalem" | "barcelona" | "bobcat" => IsaLevel::Sse42,
        "sandybridge" | "bulldozer" | "piledriver" => IsaLevel::Avx,
        "haswell" | "zen" | "steamroller" | "excavator" => IsaLevel::Avx2,
        "skylakex" | "cooperlake" | "sapphirerapids" => IsaLevel::Avx512,
        _ => return None,
    };
    Some(level)
}

#[cfg(test)]
impl CpuFeatures {
    /// A made-up x86-64 CPU with every feature of `level` and below.
    pub(crate) fn with_level(level: IsaLevel) -> CpuFeatures {
        let mut c = CpuFeatures {
            x86_64: true,
            sse3: true,
            ..CpuFeatures::default()
        };
        if level >= IsaLevel::Ssse3 {
            c.ssse3 = true;
        }
        if level >= IsaLevel::Sse42 {
            c.sse4_2 = true;
        }
        if level >= IsaLevel::Avx {
            c.avx = true;
        }
        if level >= IsaLevel::Avx2 {
            c.avx2 = true;
            c.fma = true;
        }
        if level >= IsaLevel::Avx512 {
            c.avx512f = true;
            c.avx512bw = true;
            c.avx512dq = true;
            c.avx512vl = true;
            c.avx512cd = true;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_recommendations_of_made_up_cpus() {
        let sse_only = CpuFeatures {
            x86_64: true,
            sse3: true,
            ..CpuFeatures::default()
        };
        assert_eq!(sse_only.isa_level(), Some(IsaLevel::Sse3));
        assert_eq!(CpuFeatures::default().isa_level(), None); // not x86-64
        assert_eq!(
            CpuFeatures::with_level(IsaLevel::Avx2).recommended_kernel(),
            Some("Haswell")
        );
        assert_eq!(kernel_isa_level(" SkylakeX "), Some(IsaLevel::Avx512));
        assert_eq!(kernel_isa_level("Zen"), Some(IsaLevel::Avx2));
        assert_eq!(kernel_isa_level("NoSuchCore"), None);
    }
}
