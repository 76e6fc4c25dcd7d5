//! Fonts, shaping with fallback, measuring and wrapping.
//!
//! Text is shaped here (rustybuzz, the shaper krilla itself uses) and drawn with the very glyphs
//! measured, so a right-aligned amount ends exactly at its column's edge.

use krilla::Data;
use krilla::text::{Font, GlyphId, KrillaGlyph};
use rustybuzz::{Face, UnicodeBuffer};

use crate::PdfError;

/// A font the renderer can draw with: the bytes (for shaping) and krilla's handle (for drawing).
#[derive(Clone)]
pub(crate) struct FontSource {
    data: Data,
    font: Font,
}

impl std::fmt::Debug for FontSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontSource")
            .field("bytes", &self.data.as_ref().len())
            .finish_non_exhaustive()
    }
}

impl FontSource {
    /// A font from TrueType/OpenType bytes (the first face of a collection).
    pub(crate) fn new(data: Data) -> Result<FontSource, PdfError> {
        if Face::from_slice(data.as_ref(), 0).is_none() {
            return Err(PdfError::Font);
        }
        let font = Font::new(data.clone(), 0).ok_or(PdfError::Font)?;
        Ok(FontSource { data, font })
    }
}

/// The fonts of one style, in order of preference: `DejaVu Sans` first, then the host's.
pub(crate) struct FontChain<'a> {
    faces: Vec<(Face<'a>, f32, &'a Font)>,
}

/// A run of text in one font, shaped.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The font of the run.
    pub(crate) font: Font,
    /// The run's text (the glyphs' ranges index into it).
    pub(crate) text: String,
    /// The glyphs, advances in ems.
    pub(crate) glyphs: Vec<KrillaGlyph>,
    /// The run's advance, in ems.
    pub(crate) width: f32,
}

/// A line of text, shaped: its runs and width in ems.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shaped {
    pub(crate) runs: Vec<Run>,
    pub(crate) width: f32,
}

impl Shaped {
    /// The width at `size` points.
    pub(crate) fn width_at(&self, size: f32) -> f32 {
        self.width * size
    }
}

impl<'a> FontChain<'a> {
    /// The chain of `sources`, all of which parse (checked when they were added).
    pub(crate) fn new(sources: &'a [FontSource]) -> Result<FontChain<'a>, PdfError> {
        let faces = sources
            .iter()
            .map(|source| {
                let face = Face::from_slice(source.data.as_ref(), 0).ok_or(PdfError::Font)?;
                let units = f32::from(u16::try_from(face.units_per_em()).unwrap_or(1000).max(1));
                Ok((face, units, &source.font))
            })
            .collect::<Result<Vec<_>, PdfError>>()?;
        if faces.is_empty() {
            return Err(PdfError::Font);
        }
        Ok(FontChain { faces })
    }

    /// Which font draws `c`: the first that has a glyph for it (`None` for none).
    fn pick(&self, c: char) -> Option<usize> {
        self.faces
            .iter()
            .position(|(face, _, _)| face.glyph_index(c).is_some())
    }

    /// `text` on one line: split into runs of the first font that has each character (spaces
    /// and characters no font has stay in the current run), each run shaped.
    pub(crate) fn shape(&self, text: &str) -> Shaped {
        let mut shaped = Shaped::default();
        let mut start = 0;
        let mut current: Option<usize> = None;
        for (at, c) in text.char_indices() {
            let choice = if c.is_whitespace() {
                None
            } else {
                self.pick(c)
            };
            match (current, choice) {
                (None, Some(font)) => current = Some(font),
                (Some(font), Some(next)) if font != next => {
                    self.push_run(&mut shaped, font, text.get(start..at).unwrap_or_default());
                    start = at;
                    current = Some(next);
                }
                (_, None) | (Some(_), Some(_)) => {}
            }
        }
        self.push_run(
            &mut shaped,
            current.unwrap_or(0),
            text.get(start..).unwrap_or_default(),
        );
        shaped
    }

    #[allow(
        clippy::cast_precision_loss,
        reason = "glyph positions are font units, far below 2^24"
    )]
    fn push_run(&self, shaped: &mut Shaped, font: usize, text: &str) {
        if text.is_empty() {
            return;
        }
        let Some((face, units, handle)) = self.faces.get(font) else {
            return;
        };
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let output = rustybuzz::shape(face, &[], buffer);
        let infos = output.glyph_infos();
        let positions = output.glyph_positions();
        let mut glyphs = Vec::with_capacity(infos.len());
        let mut width = 0.0;
        for (i, (info, position)) in infos.iter().zip(positions).enumerate() {
            let start = info.cluster as usize;
            let end = infos
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .map(|next| next.cluster as usize)
                .find(|&next| next != start)
                .unwrap_or(text.len());
            let advance = position.x_advance as f32 / units;
            width += advance;
            glyphs.push(KrillaGlyph::new(
                GlyphId::new(info.glyph_id),
                advance,
                position.x_offset as f32 / units,
                position.y_offset as f32 / units,
                position.y_advance as f32 / units,
                start..end.max(start),
                None,
            ));
        }
        shaped.width += width;
        shaped.runs.push(Run {
            font: (*handle).clone(),
            text: text.to_owned(),
            glyphs,
            width,
        });
    }

    /// `text` broken into lines at most `max` points wide at `size` (at spaces; a word wider
    /// than a line is broken between characters). Explicit line breaks are kept.
    pub(crate) fn wrap(&self, text: &str, size: f32, max: f32) -> Vec<Shaped> {
        let mut lines = Vec::new();
        for paragraph in text.lines() {
            let whole = self.shape(paragraph);
            if whole.width_at(size) <= max {
                lines.push(whole);
                continue;
            }
            let mut line = String::new();
            for word in paragraph.split(' ').filter(|word| !word.is_empty()) {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.shape(&candidate).width_at(size) <= max {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(self.shape(&line));
                    line.clear();
                }
                // The word alone: break it between characters while it is too wide.
                let mut rest = word;
                while self.shape(rest).width_at(size) > max {
                    let mut cut = rest.len();
                    for (at, _) in rest.char_indices().rev() {
                        if at > 0
                            && self
                                .shape(rest.get(..at).unwrap_or_default())
                                .width_at(size)
                                <= max
                        {
                            cut = at;
                            break;
                        }
                    }
                    if cut == rest.len() {
                        // Not even one character fits: take the first one anyway.
                        cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
                    }
                    lines.push(self.shape(rest.get(..cut).unwrap_or_default()));
                    rest = rest.get(cut..).unwrap_or_default();
                }
                rest.clone_into(&mut line);
            }
            if !line.is_empty() {
                lines.push(self.shape(&line));
            }
        }
        if lines.is_empty() {
            lines.push(Shaped::default());
        }
        lines
    }
}
