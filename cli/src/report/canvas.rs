//! A tiny drawing surface with two outputs: SVG (hand-written text, real fonts chosen by the
//! viewer) and PNG (rasterised with tiny-skia, text drawn from a built-in 8×8 bitmap font).
//! Nothing is read from the system: the plots work offline on a machine without any font.

use std::fmt::Write as _;

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};
use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, StrokeDash, Transform};

/// PNG pixels per SVG unit.
const PNG_SCALE: f32 = 2.0;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    pub const BLACK: Color = Color(0, 0, 0);
    pub const GREY: Color = Color(150, 150, 150);
    pub const LIGHT: Color = Color(225, 225, 225);
    pub const WHITE: Color = Color(255, 255, 255);

    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// A categorical palette (Tableau 10).
pub const PALETTE: [Color; 8] = [
    Color(31, 119, 180),
    Color(255, 127, 14),
    Color(44, 160, 44),
    Color(214, 39, 40),
    Color(148, 103, 189),
    Color(140, 86, 75),
    Color(227, 119, 194),
    Color(127, 127, 127),
];

/// Horizontal text anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

#[derive(Debug, Clone)]
enum Item {
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Color,
    },
    Line {
        points: Vec<(f32, f32)>,
        color: Color,
        width: f32,
        dashed: bool,
    },
    Circle {
        x: f32,
        y: f32,
        r: f32,
        fill: Color,
    },
    Text {
        x: f32,
        y: f32,
        text: String,
        size: f32,
        anchor: Anchor,
        color: Color,
        vertical: bool,
    },
}

/// A list of shapes in a `width × height` box (y down).
#[derive(Debug, Clone)]
pub struct Canvas {
    width: f32,
    height: f32,
    items: Vec<Item>,
}

impl Canvas {
    /// An empty white canvas.
    pub fn new(width: f32, height: f32) -> Self {
        let mut c = Canvas {
            width,
            height,
            items: Vec::new(),
        };
        c.rect(0.0, 0.0, width, height, Color::WHITE);
        c
    }

    /// A filled rectangle.
    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Color) {
        self.items.push(Item::Rect { x, y, w, h, fill });
    }

    /// A polyline.
    pub fn line(&mut self, points: Vec<(f32, f32)>, color: Color, width: f32, dashed: bool) {
        if points.len() >= 2 {
            self.items.push(Item::Line {
                points,
                color,
                width,
                dashed,
            });
        }
    }

    /// A filled circle.
    pub fn circle(&mut self, x: f32, y: f32, r: f32, fill: Color) {
        self.items.push(Item::Circle { x, y, r, fill });
    }

    /// Text whose baseline starts, centres or ends at (x, y).
    pub fn text(&mut self, x: f32, y: f32, text: impl Into<String>, size: f32, anchor: Anchor) {
        self.colored_text(x, y, text, size, anchor, Color::BLACK);
    }

    /// Coloured text.
    pub fn colored_text(
        &mut self,
        x: f32,
        y: f32,
        text: impl Into<String>,
        size: f32,
        anchor: Anchor,
        color: Color,
    ) {
        self.items.push(Item::Text {
            x,
            y,
            text: text.into(),
            size,
            anchor,
            color,
            vertical: false,
        });
    }

    /// Text read bottom to top, centred on (x, y) (a y-axis label).
    pub fn vertical_text(&mut self, x: f32, y: f32, text: impl Into<String>, size: f32) {
        self.items.push(Item::Text {
            x,
            y,
            text: text.into(),
            size,
            anchor: Anchor::Middle,
            color: Color::BLACK,
            vertical: true,
        });
    }

    /// The SVG document.
    pub fn to_svg(&self) -> String {
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            w = self.width,
            h = self.height
        );
        for item in &self.items {
            match item {
                Item::Rect { x, y, w, h, fill } => {
                    let _ = writeln!(
                        s,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                        fill.hex()
                    );
                }
                Item::Line {
                    points,
                    color,
                    width,
                    dashed,
                } => {
                    let pts: Vec<String> = points
                        .iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect();
                    let _ = writeln!(
                        s,
                        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"{}/>",
                        pts.join(" "),
                        color.hex(),
                        if *dashed { " stroke-dasharray=\"5,4\"" } else { "" }
                    );
                }
                Item::Circle { x, y, r, fill } => {
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\" fill=\"{}\"/>",
                        fill.hex()
                    );
                }
                Item::Text {
                    x,
                    y,
                    text,
                    size,
                    anchor,
                    color,
                    vertical,
                } => {
                    let anchor = match anchor {
                        Anchor::Start => "start",
                        Anchor::Middle => "middle",
                        Anchor::End => "end",
                    };
                    let rotate = if *vertical {
                        format!(" transform=\"rotate(-90 {x:.1} {y:.1})\"")
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        s,
                        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"{}\"{rotate}>{}</text>",
                        color.hex(),
                        escape(text)
                    );
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }

    /// The PNG file's bytes, at twice the SVG's size.
    ///
    /// # Errors
    /// When the canvas is empty or the encoder fails.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        let (w, h) = (
            (self.width * PNG_SCALE).round() as u32,
            (self.height * PNG_SCALE).round() as u32,
        );
        let mut pm = Pixmap::new(w, h).ok_or("empty canvas")?;
        let t = Transform::from_scale(PNG_SCALE, PNG_SCALE);
        for item in &self.items {
            match item {
                Item::Rect { x, y, w, h, fill } => {
                    if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                        pm.fill_rect(r, &paint(*fill), t, None);
                    }
                }
                Item::Line {
                    points,
                    color,
                    width,
                    dashed,
                } => {
                    let mut pb = PathBuilder::new();
                    pb.move_to(points[0].0, points[0].1);
                    for &(x, y) in &points[1..] {
                        pb.line_to(x, y);
                    }
                    if let Some(path) = pb.finish() {
                        let stroke = Stroke {
                            width: *width,
                            dash: if *dashed {
                                StrokeDash::new(vec![5.0, 4.0], 0.0)
                            } else {
                                None
                            },
                            ..Stroke::default()
                        };
                        pm.stroke_path(&path, &paint(*color), &stroke, t, None);
                    }
                }
                Item::Circle { x, y, r, fill } => {
                    if let Some(path) = PathBuilder::from_circle(*x, *y, *r) {
                        pm.fill_path(&path, &paint(*fill), FillRule::Winding, t, None);
                    }
                }
                Item::Text {
                    x,
                    y,
                    text,
                    size,
                    anchor,
                    color,
                    vertical,
                } => bitmap_text(&mut pm, *x, *y, text, *size, *anchor, *color, *vertical),
            }
        }
        pm.encode_png().map_err(|e| e.to_string())
    }
}

fn paint(c: Color) -> Paint<'static> {
    let mut p = Paint::default();
    p.set_color_rgba8(c.0, c.1, c.2, 255);
    p.anti_alias = true;
    p
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The 8×8 bitmap of `c` (rows top to bottom, bit 0 leftmost); `?` when the font lacks it.
fn glyph(c: char) -> [u8; 8] {
    let code = c as u32;
    match code {
        0x20..=0x7e => BASIC_LEGACY[code as usize],
        0xa0..=0xff => LATIN_LEGACY[(code - 0xa0) as usize],
        _ => BASIC_LEGACY[b'?' as usize],
    }
}

/// Characters the bitmap font lacks, spelt with ones it has.
fn bitmap_friendly(text: &str) -> String {
    text.replace('≤', "<=")
        .replace('≥', ">=")
        .replace(['—', '–'], "-")
        .replace('⁷', "^7")
        .replace('⁶', "^6")
        .replace('…', "...")
}

/// Pixel advance of one glyph column, in PNG pixels, for text of `size` SVG units.
fn glyph_scale(size: f32) -> f32 {
    (size * PNG_SCALE / 8.0).floor().max(1.0)
}

/// Width of `text` in SVG units as the bitmap font draws it (7 columns a glyph).
pub fn bitmap_width(text: &str, size: f32) -> f32 {
    bitmap_friendly(text).chars().count() as f32 * 7.0 * glyph_scale(size) / PNG_SCALE
}

#[allow(clippy::too_many_arguments)]
fn bitmap_text(
    pm: &mut Pixmap,
    x: f32,
    y: f32,
    text: &str,
    size: f32,
    anchor: Anchor,
    color: Color,
    vertical: bool,
) {
    let text = bitmap_friendly(text);
    let s = glyph_scale(size);
    let width = text.chars().count() as f32 * 7.0 * s;
    let shift = match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => width / 2.0,
        Anchor::End => width,
    };
    let (ox, oy) = (x * PNG_SCALE, y * PNG_SCALE);
    let p = paint(color);
    let mut pb = PathBuilder::new();
    for (i, c) in text.chars().enumerate() {
        let rows = glyph(c);
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                // Along the text: u; across (down from the top of the glyph): v.
                let u = i as f32 * 7.0 * s + col as f32 * s - shift;
                let v = (row as f32 - 7.0) * s;
                let (px, py) = if vertical {
                    (ox + v, oy - u - s)
                } else {
                    (ox + u, oy + v)
                };
                if let Some(r) = Rect::from_xywh(px, py, s, s) {
                    pb.push_rect(r);
                }
            }
        }
    }
    if let Some(path) = pb.finish() {
        pm.fill_path(&path, &p, FillRule::Winding, Transform::identity(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Canvas {
        let mut c = Canvas::new(120.0, 60.0);
        c.rect(10.0, 10.0, 20.0, 20.0, PALETTE[0]);
        c.line(vec![(0.0, 0.0), (100.0, 50.0)], Color::BLACK, 1.5, true);
        c.circle(60.0, 30.0, 3.0, PALETTE[1]);
        c.text(60.0, 50.0, "K×N ≤ 8 & <b>", 11.0, Anchor::Middle);
        c.vertical_text(8.0, 30.0, "speedup", 11.0);
        c
    }

    #[test]
    fn svg_is_well_formed_and_escaped() {
        let svg = sample().to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("&lt;b&gt;") && svg.contains("&amp;"));
        assert!(svg.contains("stroke-dasharray") && svg.contains("rotate(-90"));
    }

    #[test]
    fn png_has_the_signature_and_ink() {
        let png = sample().to_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let pm = Pixmap::decode_png(&png).unwrap();
        assert_eq!((pm.width(), pm.height()), (240, 120));
        let dark = pm
            .pixels()
            .iter()
            .filter(|p| p.red() < 100 && p.green() < 100)
            .count();
        assert!(dark > 100, "text and lines drew {dark} dark pixels");
    }
}
