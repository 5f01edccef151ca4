// Pixels between the host's images and the engine's frames.
//
// In: OFX images (any bounds, row bytes of either sign, RGB/RGBA, 8/16-bit/float, straight or
// premultiplied) and the engine's edited frames (top row first, packed, straight colour).
// Out: frames for the wire, a hash per frame to recognise analysed input, and the edited frame
// (or the input) written into an output window, box-filtered at render scales below 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine_client.h"
#include "host.h"

namespace ipfd::plugin {

using ipfd::Buffer;
using ipfd::DType;

// An image fetched from a clip, released when it goes out of scope (an empty one when the
// host gives none).
class Image {
 public:
  Image(OfxImageClipHandle clip, OfxTime t, const ofx::RectD* region);
  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  explicit operator bool() const { return h_ != nullptr; }

  int width() const { return bounds.x2 - bounds.x1; }
  int height() const { return bounds.y2 - bounds.y1; }
  std::size_t pixel_bytes() const { return ipfd::dtype_size(dtype) * std::size_t(channels); }
  std::size_t row_len() const { return std::size_t(width()) * pixel_bytes(); }
  // OFX rows go upwards from bounds.y1; row_bytes may be negative.
  std::uint8_t* row(int y) const { return data + std::ptrdiff_t(y - bounds.y1) * row_bytes; }
  std::uint8_t* pixel(int x, int y) const { return row(y) + std::ptrdiff_t(x - bounds.x1) * std::ptrdiff_t(pixel_bytes()); }

  std::uint8_t* data = nullptr;
  ofx::RectI bounds{0, 0, 0, 0};
  std::ptrdiff_t row_bytes = 0;
  DType dtype = DType::u8;
  int channels = 4;
  bool premult = false;
  double sx = 1.0, sy = 1.0;  // the image's render scale

 private:
  void read();
  OfxPropertySetHandle h_ = nullptr;
};

// Everything about the analysed frames that must match at render time.
struct Format {
  DType dtype = DType::u8;
  int channels = 4, width = 0, height = 0, x1 = 0, y1 = 0;
  bool premult = false;
  bool same_pixels(const Format& o) const {
    return dtype == o.dtype && channels == o.channels && width == o.width && height == o.height && x1 == o.x1 &&
           y1 == o.y1 && premult == o.premult;
  }
  std::size_t frame_bytes() const {
    return std::size_t(width) * std::size_t(height) * std::size_t(channels) * ipfd::dtype_size(dtype);
  }
};

Format format_of(const Image& img);
// "64x48 RGBA u8 premultiplied", for messages.
std::string describe_format(const Format& f);
// Hash of the pixel layout; seeds frame_hash and the clip hash.
std::uint64_t format_seed(const Format& f);
// Hash of an image's raw pixels, top row first (independent of row bytes and row order).
std::uint64_t frame_hash(const Image& img);
// The wire frame: H x W x C, top row first, packed, straight colour.
Buffer to_wire(const Image& img);

// Copies src into dst over `win` (zero where src has no pixels, or everywhere without src);
// false when the host asked to abort.
bool passthrough(const Image& dst, const Image* src, const ofx::RectI& win, OfxImageEffectHandle effect);
// Writes the edited frame of format `fmt` into dst over `win` (src where the frame has no
// pixels). kx, ky: frame pixels per output pixel (1 at full scale, 2 at half proxy; at least 1),
// a footprint is box-averaged. False when the host asked to abort.
bool write_result(const Format& fmt, const Buffer& frame, const Image& dst, const Image* src, const ofx::RectI& win,
                  double kx, double ky, OfxImageEffectHandle effect);

}  // namespace ipfd::plugin
