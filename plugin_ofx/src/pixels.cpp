// Implementation of pixels.h.
#include "pixels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <vector>

#include "hash.h"

namespace ipfd::plugin {

namespace {

DType parse_depth(const std::string& s) {
  if (s == ofx::kBitDepthByte) return DType::u8;
  if (s == ofx::kBitDepthShort) return DType::u16;
  if (s == ofx::kBitDepthFloat) return DType::f32;
  throw Failure(ofx::kStatErrImageFormat, "unsupported pixel depth " + s);
}
int parse_components(const std::string& s) {
  if (s == ofx::kImageComponentRGBA) return 4;
  if (s == ofx::kImageComponentRGB) return 3;
  throw Failure(ofx::kStatErrImageFormat, "unsupported components " + s);
}

template <class T> constexpr double max_of() { return T(~T(0)); }

// Straight colour for the engine: premultiplied RGBA is divided by alpha (the engine edits
// RGB and passes alpha through; the result is premultiplied again at render).
template <class T>
void unpremultiply(T* px, std::size_t n_pixels) {
  for (std::size_t i = 0; i < n_pixels; ++i, px += 4) {
    if constexpr (std::is_floating_point_v<T>) {
      const T a = px[3];
      if (a > T(0)) for (int c = 0; c < 3; ++c) px[c] = px[c] / a;
    } else {
      const std::uint64_t a = px[3];
      const std::uint64_t top = std::uint64_t(max_of<T>());
      if (a > 0)
        for (int c = 0; c < 3; ++c) px[c] = T(std::min<std::uint64_t>(top, (std::uint64_t(px[c]) * top + a / 2) / a));
    }
  }
}

// Copies src into dst on row Y for x in [xa, xb) (zero where src has no pixels).
void copy_source_span(const Image& dst, const Image* src, int Y, int xa, int xb) {
  if (xa >= xb) return;
  const std::size_t pb = dst.pixel_bytes();
  std::uint8_t* out = dst.pixel(xa, Y);
  if (!src || Y < src->bounds.y1 || Y >= src->bounds.y2) {
    std::memset(out, 0, std::size_t(xb - xa) * pb);
    return;
  }
  const int sa = std::max(xa, src->bounds.x1), sb = std::min(xb, src->bounds.x2);
  if (sa >= sb) {
    std::memset(out, 0, std::size_t(xb - xa) * pb);
    return;
  }
  if (sa > xa) std::memset(out, 0, std::size_t(sa - xa) * pb);
  std::memcpy(dst.pixel(sa, Y), src->pixel(sa, Y), std::size_t(sb - sa) * pb);
  if (xb > sb) std::memset(dst.pixel(sb, Y), 0, std::size_t(xb - sb) * pb);
}

template <class T>
double sample(const T* p, int c, bool premult) {
  if (!premult || c == 3) return double(p[c]);
  if constexpr (std::is_floating_point_v<T>) {
    return double(T(p[c] * p[3]));
  } else {
    const std::uint64_t top = std::uint64_t(max_of<T>());
    return double((std::uint64_t(p[c]) * p[3] + top / 2) / top);
  }
}

template <class T>
T store(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v);
  } else {
    return T(std::clamp(std::floor(v + 0.5), 0.0, max_of<T>()));
  }
}

template <class T>
bool write_frame(const Format& f, const Buffer& frame, const Image& dst, const Image* src, const ofx::RectI& win,
                 double kx, double ky, OfxImageEffectHandle effect) {
  const int C = f.channels, W = f.width, H = f.height, fx = f.x1, fy = f.y1;
  const bool pm = f.premult && C == 4;
  const std::size_t row_len = std::size_t(W) * C * sizeof(T);
  const bool exact = std::abs(kx - 1.0) < 1e-9 && std::abs(ky - 1.0) < 1e-9;
  auto result_row = [&](int j) { return reinterpret_cast<const T*>(frame.data + std::size_t(H - 1 - (j - fy)) * row_len); };
  for (int Y = win.y1; Y < win.y2; ++Y) {
    if (((Y - win.y1) & 63) == 0 && E->abort(effect)) return false;
    if (exact) {
      if (Y < fy || Y >= fy + H) {
        copy_source_span(dst, src, Y, win.x1, win.x2);
        continue;
      }
      const int a = std::clamp(fx, win.x1, win.x2), b = std::clamp(fx + W, win.x1, win.x2);
      copy_source_span(dst, src, Y, win.x1, a);
      copy_source_span(dst, src, Y, b, win.x2);
      if (a >= b) continue;
      const T* in = result_row(Y) + std::size_t(a - fx) * C;
      T* out = reinterpret_cast<T*>(dst.pixel(a, Y));
      if (!pm) {
        std::memcpy(out, in, std::size_t(b - a) * C * sizeof(T));
      } else {
        for (int x = a; x < b; ++x, in += C, out += C)
          for (int c = 0; c < C; ++c) out[c] = store<T>(sample(in, c, true));
      }
      continue;
    }
    const int j0 = int(std::floor(Y * ky + 1e-9));
    const int j1 = std::max(j0 + 1, int(std::ceil((Y + 1) * ky - 1e-9)));
    const int b0 = std::max(j0, fy), b1 = std::min(j1, fy + H);
    for (int X = win.x1; X < win.x2; ++X) {
      const int i0 = int(std::floor(X * kx + 1e-9));
      const int i1 = std::max(i0 + 1, int(std::ceil((X + 1) * kx - 1e-9)));
      const int a0 = std::max(i0, fx), a1 = std::min(i1, fx + W);
      if (a0 >= a1 || b0 >= b1) {
        copy_source_span(dst, src, Y, X, X + 1);
        continue;
      }
      double acc[4] = {0, 0, 0, 0};
      for (int j = b0; j < b1; ++j) {
        const T* row = result_row(j);
        for (int i = a0; i < a1; ++i)
          for (int c = 0; c < C; ++c) acc[c] += sample(row + std::size_t(i - fx) * C, c, pm);
      }
      const double n = double(b1 - b0) * double(a1 - a0);
      T* out = reinterpret_cast<T*>(dst.pixel(X, Y));
      for (int c = 0; c < C; ++c) out[c] = store<T>(acc[c] / n);
    }
  }
  return true;
}

}  // namespace

Image::Image(OfxImageClipHandle clip, OfxTime t, const ofx::RectD* region) {
  if (E->clipGetImage(clip, t, region, &h_) != ofx::kStatOK) h_ = nullptr;
  if (!h_) return;
  try {
    read();
  } catch (...) {
    E->clipReleaseImage(h_);
    h_ = nullptr;
    throw;
  }
}

Image::~Image() {
  if (h_) E->clipReleaseImage(h_);
}

void Image::read() {
  void* ptr = nullptr;
  P->propGetPointer(h_, ofx::kImagePropData, 0, &ptr);
  data = static_cast<std::uint8_t*>(ptr);
  int b[4] = {0, 0, 0, 0};
  P->propGetIntN(h_, ofx::kImagePropBounds, 4, b);
  bounds = {b[0], b[1], b[2], b[3]};
  row_bytes = prop_int(h_, ofx::kImagePropRowBytes, 0, 0);
  dtype = parse_depth(prop_str(h_, ofx::kImageEffectPropPixelDepth));
  channels = parse_components(prop_str(h_, ofx::kImageEffectPropComponents));
  premult = prop_str(h_, ofx::kImageEffectPropPreMultiplication) == ofx::kImagePreMultiplied && channels == 4;
  sx = prop_double(h_, ofx::kImageEffectPropRenderScale, 0, 1.0);
  sy = prop_double(h_, ofx::kImageEffectPropRenderScale, 1, 1.0);
  if (!data || bounds.x2 < bounds.x1 || bounds.y2 < bounds.y1 ||
      std::abs(row_bytes) < std::ptrdiff_t(width()) * std::ptrdiff_t(pixel_bytes()))
    throw Failure(ofx::kStatErrImageFormat, "the host gave an image with inconsistent data, bounds or row bytes");
}

Format format_of(const Image& img) {
  Format f;
  f.dtype = img.dtype;
  f.channels = img.channels;
  f.width = img.width();
  f.height = img.height();
  f.x1 = img.bounds.x1;
  f.y1 = img.bounds.y1;
  f.premult = img.premult;
  return f;
}

std::uint64_t format_seed(const Format& f) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s/%d/%d/%d/%d/%d/%d", ipfd::dtype_name(f.dtype), f.channels, f.width, f.height, f.x1,
                f.y1, int(f.premult));
  return hash_bytes(buf, std::strlen(buf), 0x1f0d);
}

std::uint64_t frame_hash(const Image& img) {
  std::uint64_t h = format_seed(format_of(img));
  const std::size_t len = img.row_len();
  for (int y = img.bounds.y2 - 1, r = 0; y >= img.bounds.y1; --y, ++r) h = mix64(h ^ hash_bytes(img.row(y), len, r));
  return h;
}

Buffer to_wire(const Image& img) {
  const std::size_t len = img.row_len();
  std::vector<std::uint8_t> out(len * std::size_t(img.height()));
  for (int y = img.bounds.y2 - 1, r = 0; y >= img.bounds.y1; --y, ++r) std::memcpy(&out[r * len], img.row(y), len);
  if (img.premult) {
    const std::size_t n = std::size_t(img.width()) * std::size_t(img.height());
    if (img.dtype == DType::u8) unpremultiply(reinterpret_cast<std::uint8_t*>(out.data()), n);
    else if (img.dtype == DType::u16) unpremultiply(reinterpret_cast<std::uint16_t*>(out.data()), n);
    else unpremultiply(reinterpret_cast<float*>(out.data()), n);
  }
  return Buffer::from_vector(std::move(out));
}

std::string describe_format(const Format& f) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%dx%d %s %s%s", f.width, f.height, f.channels == 4 ? "RGBA" : "RGB",
                ipfd::dtype_name(f.dtype), f.premult ? " premultiplied" : "");
  return buf;
}

bool passthrough(const Image& dst, const Image* src, const ofx::RectI& win, OfxImageEffectHandle effect) {
  for (int Y = win.y1; Y < win.y2; ++Y) {
    if (((Y - win.y1) & 63) == 0 && E->abort(effect)) return false;
    copy_source_span(dst, src, Y, win.x1, win.x2);
  }
  return true;
}

bool write_result(const Format& fmt, const Buffer& frame, const Image& dst, const Image* src, const ofx::RectI& win,
                  double kx, double ky, OfxImageEffectHandle effect) {
  if (fmt.dtype == DType::u8) return write_frame<std::uint8_t>(fmt, frame, dst, src, win, kx, ky, effect);
  if (fmt.dtype == DType::u16) return write_frame<std::uint16_t>(fmt, frame, dst, src, win, kx, ky, effect);
  return write_frame<float>(fmt, frame, dst, src, win, kx, ky, effect);
}

}  // namespace ipfd::plugin
