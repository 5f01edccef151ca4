// The session's Source clip and the images the host hands out.
//
// In: the command-line options (`g_opt`: size, channels, depth, origin, row-byte layout,
// premultiplication, proxy scale) and a raw clip file (frames H x W x C, top row first).
// Out: `load_frames`, `HostImage` (its own property set, any origin and row bytes, filled with
// 0xCD), `source_image` (frame i at a render scale), `write_raw` (an output image packed top row
// first), `has_unwritten_row` and the count of images handed out and not released.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ofx_api.h"
#include "props.h"

namespace testhost {

struct Options {
  std::string bundle, clip_path, context = ofx::kImageEffectContextFilter;
  int width = 0, height = 0, channels = 4, first = 0, count = 0, ox = 0, oy = 0, pad = 0;
  std::string depth = ofx::kBitDepthByte;
  bool negative_rowbytes = false, premult = false, message_v2 = true;
  double proxy = 1.0;       // render scale of actions other than render
  bool connected = true;    // the Source clip
};
extern Options g_opt;

std::size_t pixel_size();
void load_frames(const std::string& path);

struct HostImage {
  PropSet props;
  std::vector<std::uint8_t> buf;
  std::uint8_t* data = nullptr;
  ofx::RectI bounds{0, 0, 0, 0};
  std::ptrdiff_t rb = 0;
  bool host_owned = false;
  std::uint8_t* pixel(int x, int y) { return data + std::ptrdiff_t(y - bounds.y1) * rb + std::ptrdiff_t(x - bounds.x1) * std::ptrdiff_t(pixel_size()); }
};
extern std::atomic<int> g_images_out, g_images_fetched;

// Bounds of the frame at render scale s (the test uses scales that divide the sizes evenly).
ofx::RectI scaled_bounds(double sx, double sy);
std::unique_ptr<HostImage> make_image(ofx::RectI b, double sx, double sy);
// Source frame `index` at scale (sx, sy): nearest-neighbour downsampling of the stored frame.
std::unique_ptr<HostImage> source_image(int index, double sx, double sy);
void write_raw(const std::string& path, HostImage& img);
// True when some row of the window still holds only the 0xCD fill of make_image.
bool has_unwritten_row(HostImage& img);

}  // namespace testhost
