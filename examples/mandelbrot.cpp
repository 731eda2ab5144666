// The Mandelbrot set as a PNG picture: workers render bands of rows, which come back in row
// order. Every pixel depends on its own coordinates alone, so the file is the same, byte for
// byte, for any number of workers, and the same as --serial.
//
//   mandelbrot                                  the whole set, 800x600, in mandelbrot.png
//   mandelbrot --centre -0.7436,0.1318 --span 0.005 --iterations 5000 --output zoom.png
//   mandelbrot --serial                         the same picture in this process alone

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <dtask/dtask.hpp>

#include "command_line.hpp"
#include "png_file.hpp"
#include "progress_bar.hpp"

namespace {

using Pixels = std::vector<std::uint8_t>;  // palette indices, row after row

/// What to draw: job-wide data, sent to each worker once per job.
struct View {
    std::uint32_t width = 800;
    std::uint32_t height = 600;
    double centre_re = -0.75;
    double centre_im = 0;
    double span = 3.5;                // the picture's width in the complex plane
    std::uint32_t iterations = 1000;  // at most, per pixel
    template <class Archive>
    void serialize(Archive& archive) {
        archive(width, height, centre_re, centre_im, span, iterations);
    }
};

/// The rows to cut into subtasks: `height` rows, `rows_per_band` at a time.
struct Rows {
    std::uint32_t height = 0;
    std::uint32_t rows_per_band = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(height, rows_per_band);
    }
};

/// One subtask: rows first, first + 1, ..., first + count - 1.
struct Band {
    std::uint32_t first = 0;
    std::uint32_t count = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(first, count);
    }
};

/// Palette index 0 is the set itself (black); 1..255 colour how fast a point escapes.
std::uint8_t colour_of(double re, double im, std::uint32_t iterations) {
    // The main cardioid and the period-2 bulb are inside: no need to iterate there.
    const double q = (re - 0.25) * (re - 0.25) + im * im;
    if (q * (q + re - 0.25) <= 0.25 * im * im || (re + 1) * (re + 1) + im * im <= 0.0625)
        return 0;
    double x = 0, y = 0;
    for (std::uint32_t n = 0; n < iterations; ++n) {
        const double xx = x * x, yy = y * y;
        if (xx + yy > 256) {
            // The escape count, smoothed by how far past the radius the point got; one
            // cycle of the palette every 32 iterations.
            const double smooth = n + 1 - std::log2(std::log2(xx + yy) / 2);
            return static_cast<std::uint8_t>(1 + static_cast<int>(smooth * 255 / 32) % 255);
        }
        y = 2 * x * y + im;
        x = xx - yy + re;
    }
    return 0;
}

Pixels render(const View& view, const Band& band) {
    const double step = view.span / view.width;  // square pixels
    const double top = view.centre_im + step * view.height / 2;
    const double left = view.centre_re - view.span / 2;
    Pixels pixels;
    pixels.reserve(static_cast<std::size_t>(band.count) * view.width);
    for (std::uint32_t row = band.first; row < band.first + band.count; ++row) {
        const double im = top - (row + 0.5) * step;  // the pixel's centre
        for (std::uint32_t column = 0; column < view.width; ++column)
            pixels.push_back(colour_of(left + (column + 0.5) * step, im, view.iterations));
    }
    return pixels;
}

std::uint64_t bands_of(const Rows& rows) {
    return (rows.height + rows.rows_per_band - 1) / rows.rows_per_band;
}

Band band_of(const Rows& rows, std::uint64_t i) {
    const auto first = static_cast<std::uint32_t>(i * rows.rows_per_band);
    return Band{first, std::min(rows.rows_per_band, rows.height - first)};
}

// At namespace scope, so that this binary started as a worker finds map by the job's name.
const dtask::Job<Pixels> mandelbrot{
    "mandelbrot.rows",
    [](const Rows& rows, dtask::SplitHint) {
        return dtask::pieces(bands_of(rows), [=](std::uint64_t i) { return band_of(rows, i); });
    },
    [](const Band& band, const View& view) { return render(view, band); },
    // In subtask order (the default): the bands append in row order.
    [](Pixels picture, Pixels band) {
        picture.insert(picture.end(), band.begin(), band.end());
        return picture;
    }};

/// Dark blue through white to orange and back, 255 steps, after Ultra Fractal's default.
Palette palette() {
    struct Stop {
        double at;
        double r, g, b;
    };
    const Stop stops[] = {{0.0, 0, 7, 100},      {0.16, 32, 107, 203}, {0.42, 237, 255, 255},
                          {0.6425, 255, 170, 0}, {0.8575, 0, 2, 0},    {1.0, 0, 7, 100}};
    Palette colours{};  // [0]: black, the set
    for (int i = 1; i < 256; ++i) {
        const double at = (i - 1) / 255.0;
        std::size_t s = 0;
        while (stops[s + 1].at < at)
            ++s;
        const Stop& a = stops[s];
        const Stop& b = stops[s + 1];
        const double t = (at - a.at) / (b.at - a.at);
        auto mix = [t](double from, double to) {
            return static_cast<std::uint8_t>(std::lround(from + (to - from) * t));
        };
        colours[i] = Rgb{mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b)};
    }
    return colours;
}

/// "RE,IM" into the view's centre; false if the text is not two numbers and a comma.
bool read_centre(const std::string& text, View& view) {
    int used = 0;
    const int read =
        std::sscanf(text.c_str(), "%lf,%lf%n", &view.centre_re, &view.centre_im, &used);
    return read == 2 && used == static_cast<int>(text.size());
}

void print_help() {
    std::cout << "Usage: mandelbrot [options]\n"
                 "Draws the Mandelbrot set into a PNG file, its rows rendered on worker\n"
                 "processes. The file is the same, byte for byte, for any number of workers.\n\n"
                 "Options:\n"
                 "  --width W          pixels across (default 800)\n"
                 "  --height H         pixels down (default 600)\n"
                 "  --centre RE,IM     the point at the picture's centre (default -0.75,0)\n"
                 "  --span S           the picture's width in the complex plane (default 3.5)\n"
                 "  --iterations I     the most iterations per pixel (default 1000)\n"
                 "  --rows R           rows per subtask (default 8)\n"
                 "  --output FILE      the PNG file to write (default mandelbrot.png)\n"
                 "  --serial           render in this process alone, without dtask\n"
              << common_usage << "\n"
              << dtask::worker_usage();
}

}  // namespace

int main(int argc, char** argv) {
    dtask::init(argc, argv);  // a worker process serves here and exits

    View view;
    Rows rows{0, 8};
    std::string output = "mandelbrot.png";
    WhereToRun where;
    bool serial = false;
    CommandLine args("mandelbrot", argc, argv);
    while (args.next()) {
        if (args.is("--width")) {
            view.width = static_cast<std::uint32_t>(args.number(1, 20'000));
        } else if (args.is("--height")) {
            view.height = static_cast<std::uint32_t>(args.number(1, 20'000));
        } else if (args.is("--centre") || args.is("--center")) {
            const std::string flag(args.arg());
            const std::string text(args.value());
            if (!read_centre(text, view))
                args.fail(flag + " takes RE,IM like -0.75,0.1, not '" + text + "'");
        } else if (args.is("--span")) {
            view.span = args.real();
            if (!(view.span > 0 && std::isfinite(view.span)))
                args.fail("--span must be above 0");
        } else if (args.is("--iterations")) {
            view.iterations = static_cast<std::uint32_t>(args.number(1, 10'000'000));
        } else if (args.is("--rows")) {
            rows.rows_per_band = static_cast<std::uint32_t>(args.number(1, 20'000));
        } else if (args.is("--output")) {
            output = std::string(args.value());
        } else if (args.is("--serial")) {
            serial = true;
        } else if (!args.common(where, print_help)) {
            args.unknown();
        }
    }
    rows.height = view.height;

    try {
        const auto start = std::chrono::steady_clock::now();
        Pixels pixels;
        if (serial) {
            for (std::uint64_t i = 0; i < bands_of(rows); ++i) {
                const Pixels band = render(view, band_of(rows, i));
                pixels.insert(pixels.end(), band.begin(), band.end());
            }
        } else {
            ProgressBar bar("mandelbrot");  // on a terminal only
            pixels = where.with_submitter([&](dtask::Submitter& submitter) {
                return submitter.run(mandelbrot, rows, view, bar.attach({}));
            });
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        write_png(output, view.width, view.height, pixels, palette());
        const auto inside = std::count(pixels.begin(), pixels.end(), std::uint8_t{0});
        std::printf(
            "wrote %s: %ux%u pixels, at most %u iterations each, %.2f%% of them in the set\n",
            output.c_str(), view.width, view.height, view.iterations,
            100.0 * static_cast<double>(inside) / static_cast<double>(pixels.size()));
        std::fprintf(stderr, "mandelbrot: rendered in %.3f s, start-up included\n", seconds);
    } catch (const std::exception& e) {
        std::cerr << "mandelbrot: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
