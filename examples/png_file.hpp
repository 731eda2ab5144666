#pragma once
// Writes a picture of palette indices as an 8-bit colour-mapped PNG, with libpng's simplified
// API. The same pixels always give the same bytes: libpng adds no time stamp.

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <png.h>

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};
using Palette = std::array<Rgb, 256>;

/// `pixels` holds `height` rows of `width` palette indices, top row first. Throws
/// std::runtime_error with libpng's reason if the file cannot be written.
inline void write_png(const std::string& path, std::uint32_t width, std::uint32_t height,
                      const std::vector<std::uint8_t>& pixels, const Palette& palette) {
    if (pixels.size() != static_cast<std::size_t>(width) * height)
        throw std::runtime_error("write_png: " + std::to_string(pixels.size()) +
                                 " pixels for a picture of " + std::to_string(width) + "x" +
                                 std::to_string(height));
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = PNG_FORMAT_RGB_COLORMAP;
    image.colormap_entries = palette.size();
    static_assert(sizeof(Rgb) == 3, "the colour map is read as packed RGB triples");
    if (!png_image_write_to_file(&image, path.c_str(), 0, pixels.data(),
                                 static_cast<png_int_32>(width), palette.data()))
        throw std::runtime_error("cannot write " + path + ": " + image.message);
}
