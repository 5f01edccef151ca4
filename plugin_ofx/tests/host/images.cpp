// Implementation of images.h.
#include "images.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "output.h"

namespace testhost {

Options g_opt;
std::atomic<int> g_images_out{0}, g_images_fetched{0};

namespace {
std::vector<std::vector<std::uint8_t>> g_frames;  // top-first packed frames of the Source clip
std::mutex g_frames_mutex;

std::size_t sample_size() { return g_opt.depth == ofx::kBitDepthByte ? 1 : g_opt.depth == ofx::kBitDepthShort ? 2 : 4; }
}  // namespace

std::size_t pixel_size() { return sample_size() * std::size_t(g_opt.channels); }

void load_frames(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read clip " + path);
  std::vector<std::uint8_t> all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t fb = std::size_t(g_opt.width) * g_opt.height * pixel_size();
  if (fb == 0 || all.size() % fb) die("clip size does not match --size/--channels/--depth");
  std::lock_guard<std::mutex> lock(g_frames_mutex);
  g_frames.clear();
  for (std::size_t off = 0; off < all.size(); off += fb) g_frames.emplace_back(all.begin() + off, all.begin() + off + fb);
  g_opt.count = int(g_frames.size());
}

ofx::RectI scaled_bounds(double sx, double sy) {
  return {int(std::floor(g_opt.ox * sx)), int(std::floor(g_opt.oy * sy)),
          int(std::floor(g_opt.ox * sx)) + int(std::lround(g_opt.width * sx)),
          int(std::floor(g_opt.oy * sy)) + int(std::lround(g_opt.height * sy))};
}

std::unique_ptr<HostImage> make_image(ofx::RectI b, double sx, double sy) {
  auto img = std::make_unique<HostImage>();
  img->props.image = img.get();
  img->bounds = b;
  const int w = b.x2 - b.x1, h = b.y2 - b.y1;
  const std::size_t stride = std::size_t(w) * pixel_size() + std::size_t(g_opt.pad);
  img->buf.assign(stride * std::size_t(h) + 16, 0xCD);  // 0xCD: "never written"
  if (g_opt.negative_rowbytes) {  // rows stored top-first: row y1 is the last in memory
    img->data = img->buf.data() + stride * std::size_t(h - 1);
    img->rb = -std::ptrdiff_t(stride);
  } else {
    img->data = img->buf.data();
    img->rb = std::ptrdiff_t(stride);
  }
  PropSet& p = img->props;
  p.set_s(ofx::kPropType, {"OfxTypeImage"});
  p.set_p(ofx::kImagePropData, img->data);
  p.set_i(ofx::kImagePropBounds, {b.x1, b.y1, b.x2, b.y2});
  p.set_i(ofx::kImagePropRegionOfDefinition, {b.x1, b.y1, b.x2, b.y2});
  p.set_i(ofx::kImagePropRowBytes, {int(img->rb)});
  p.set_s(ofx::kImageEffectPropPixelDepth, {g_opt.depth});
  p.set_s(ofx::kImageEffectPropComponents, {g_opt.channels == 4 ? ofx::kImageComponentRGBA : ofx::kImageComponentRGB});
  p.set_s(ofx::kImageEffectPropPreMultiplication,
          {g_opt.channels == 4 ? (g_opt.premult ? ofx::kImagePreMultiplied : ofx::kImageUnPreMultiplied) : ofx::kImageOpaque});
  p.set_d(ofx::kImageEffectPropRenderScale, {sx, sy});
  p.set_d(ofx::kImagePropPixelAspectRatio, {1.0});
  p.set_s("OfxImagePropField", {"OfxFieldNone"});
  p.set_s("OfxImagePropUniqueIdentifier", {std::to_string(reinterpret_cast<std::uintptr_t>(img.get()))});
  return img;
}

std::unique_ptr<HostImage> source_image(int index, double sx, double sy) {
  auto img = make_image(scaled_bounds(sx, sy), sx, sy);
  std::lock_guard<std::mutex> lock(g_frames_mutex);
  const auto& f = g_frames[std::size_t(index)];
  const std::size_t pb = pixel_size();
  for (int Y = img->bounds.y1; Y < img->bounds.y2; ++Y)
    for (int X = img->bounds.x1; X < img->bounds.x2; ++X) {
      int x = std::min(g_opt.width - 1, int(std::floor((X + 0.5) / sx)) - g_opt.ox);
      int y = std::min(g_opt.height - 1, int(std::floor((Y + 0.5) / sy)) - g_opt.oy);
      x = std::max(0, x);
      y = std::max(0, y);
      const int row = g_opt.height - 1 - y;  // stored top-first
      std::memcpy(img->pixel(X, Y), &f[(std::size_t(row) * g_opt.width + x) * pb], pb);
    }
  return img;
}

void write_raw(const std::string& path, HostImage& img) {
  std::ofstream out(path, std::ios::binary);
  const std::size_t len = std::size_t(img.bounds.x2 - img.bounds.x1) * pixel_size();
  for (int y = img.bounds.y2 - 1; y >= img.bounds.y1; --y)
    out.write(reinterpret_cast<const char*>(img.pixel(img.bounds.x1, y)), std::streamsize(len));
}

bool has_unwritten_row(HostImage& img) {
  const std::size_t len = std::size_t(img.bounds.x2 - img.bounds.x1) * pixel_size();
  for (int y = img.bounds.y1; y < img.bounds.y2; ++y) {
    const std::uint8_t* row = img.pixel(img.bounds.x1, y);
    if (std::all_of(row, row + len, [](std::uint8_t b) { return b == 0xCD; })) return true;
  }
  return false;
}

}  // namespace testhost
