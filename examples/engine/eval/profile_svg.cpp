#include "eval/profile_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "eval/xml_escape.hpp"

namespace skipllm::engine::eval {

namespace {

std::string num(double v, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

void write_profile_svg(std::ostream& os, ProfileResult const& p, std::string const& subtitle) {
  std::vector<std::string> sub;
  for (std::size_t a = 0; a <= subtitle.size();) {
    std::size_t b = subtitle.find('\n', a);
    if (b == std::string::npos) b = subtitle.size();
    if (b > a) sub.push_back(subtitle.substr(a, b - a));
    a = b + 1;
  }
  int const n = static_cast<int>(p.layers.size());
  double const tau = static_cast<double>(p.threshold);
  double const left = 70, right = 30, plot_w = std::max(520.0, 26.0 * n);
  double const overview_top = 78 + 16.0 * static_cast<double>(sub.size()), overview_h = 150;
  double const zoom_top = overview_top + overview_h + 56, zoom_h = 300;
  double const width = left + plot_w + right, height = zoom_top + zoom_h + 84;
  auto const x_of = [&](double layer) { return left + (n > 1 ? layer / (n - 1) : 0.5) * plot_w; };
  auto const finite = [](double v) { return std::isfinite(v); };

  // The zoomed range covers the typical layers: those whose mean is within 0.1 of the median
  // mean. Layers outside it (e.g. the first and last) are marked at the panel's edge.
  std::vector<double> means;
  for (LayerProfile const& l : p.layers) {
    if (finite(l.cosine.mean)) means.push_back(l.cosine.mean);
  }
  double const typical = means.empty() ? tau : describe_values(means).median;
  double zlo = tau, zhi = tau;
  for (LayerProfile const& l : p.layers) {
    Distribution const& d = l.cosine;
    if (!finite(d.mean) || std::abs(d.mean - typical) > 0.1) continue;
    for (double const v : {d.mean - d.stddev, d.p10}) zlo = std::min(zlo, v);
    for (double const v : {d.mean + d.stddev, d.p90}) zhi = std::max(zhi, v);
  }
  double const zstep = zhi - zlo > 0.4 ? 0.1 : zhi - zlo > 0.2 ? 0.05 : zhi - zlo > 0.08 ? 0.02 : 0.01;
  zlo = std::max(-1.0, std::floor(zlo / zstep - 1e-9) * zstep);
  zhi = std::min(1.0, std::ceil(zhi / zstep + 1e-9) * zstep);
  if (zhi <= zlo) zhi = zlo + zstep;

  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width, 0) << "\" height=\"" << num(height, 0)
     << "\" viewBox=\"0 0 " << num(width, 0) << " " << num(height, 0) << "\" font-family=\"sans-serif\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  os << "<text x=\"" << left
     << "\" y=\"26\" font-size=\"17\" font-weight=\"bold\">FFN similarity profile: cos(h, h + FFN(h)) per layer, "
        "dense</text>\n";
  for (std::size_t i = 0; i < sub.size(); ++i) {
    os << "<text x=\"" << left << "\" y=\"" << 46 + 16 * static_cast<int>(i) << "\" font-size=\"12\" fill=\"#444\">"
       << xml_escape(sub[i]) << "</text>\n";
  }

  // One panel: grid, band, p10/p90, mean, threshold; values outside [lo, hi] are clipped to the
  // edge and marked.
  auto const panel = [&](char const* id, char const* title, double top, double h, double lo, double hi, double step) {
    auto const y_of = [&](double v) { return top + (hi - std::clamp(v, lo, hi)) / (hi - lo) * h; };
    os << "<g id=\"" << id << "\">\n";
    os << "<text x=\"" << left << "\" y=\"" << num(top - 10, 1) << "\" font-size=\"13\" font-weight=\"bold\">" << title
       << "</text>\n";
    os << "<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n";
    for (double v = lo; v <= hi + step / 2; v += step) {
      double const y = y_of(v);
      os << "<line x1=\"" << num(left, 1) << "\" y1=\"" << num(y, 1) << "\" x2=\"" << num(left + plot_w, 1)
         << "\" y2=\"" << num(y, 1) << "\" stroke=\"#e3e3e3\"/>\n";
      os << "<text x=\"" << num(left - 8, 1) << "\" y=\"" << num(y + 4, 1) << "\" text-anchor=\"end\">" << num(v, 2)
         << "</text>\n";
    }
    for (int l = 0; l < n; ++l) {
      if (n > 16 && l % 2 == 1 && l != n - 1) continue;
      os << "<text x=\"" << num(x_of(l), 1) << "\" y=\"" << num(top + h + 16, 1) << "\" text-anchor=\"middle\">" << l
         << "</text>\n";
    }
    os << "<rect x=\"" << num(left, 1) << "\" y=\"" << num(top, 1) << "\" width=\"" << num(plot_w, 1) << "\" height=\""
       << num(h, 1) << "\" fill=\"none\" stroke=\"#888\"/>\n";
    os << "<text transform=\"translate(18," << num(top + h / 2, 1)
       << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">cosine</text>\n";
    os << "</g>\n";
    // The band: mean + std forward, mean - std backward.
    os << "<polygon class=\"band\" fill=\"#4a90d9\" fill-opacity=\"0.22\" stroke=\"none\" points=\"";
    for (int l = 0; l < n; ++l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (finite(d.mean)) os << num(x_of(l), 1) << "," << num(y_of(d.mean + d.stddev), 1) << " ";
    }
    for (int l = n - 1; l >= 0; --l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (finite(d.mean)) os << num(x_of(l), 1) << "," << num(y_of(d.mean - d.stddev), 1) << " ";
    }
    os << "\"/>\n";
    auto const polyline = [&](char const* cls, auto value, char const* style) {
      os << "<polyline class=\"" << cls << "\" fill=\"none\" " << style << " points=\"";
      for (int l = 0; l < n; ++l) {
        double const v = value(p.layers[static_cast<std::size_t>(l)]);
        if (finite(v)) os << num(x_of(l), 1) << "," << num(y_of(v), 1) << " ";
      }
      os << "\"/>\n";
    };
    polyline(
        "p10", [](LayerProfile const& l) { return l.cosine.p10; },
        "stroke=\"#7a7a7a\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    polyline(
        "p90", [](LayerProfile const& l) { return l.cosine.p90; },
        "stroke=\"#7a7a7a\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    polyline(
        "mean", [](LayerProfile const& l) { return l.cosine.mean; }, "stroke=\"#1f5fa8\" stroke-width=\"2\"");
    double const ty = y_of(tau);
    os << "<line class=\"threshold\" x1=\"" << num(left, 1) << "\" y1=\"" << num(ty, 1) << "\" x2=\""
       << num(left + plot_w, 1) << "\" y2=\"" << num(ty, 1)
       << "\" stroke=\"#d0342c\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>\n";
    os << "<g class=\"points\" fill=\"#1f5fa8\" font-size=\"10\">\n";
    for (int l = 0; l < n; ++l) {
      Distribution const& d = p.layers[static_cast<std::size_t>(l)].cosine;
      if (!finite(d.mean)) continue;
      double const x = x_of(l), y = y_of(d.mean);
      std::string const tip = "<title>layer " + std::to_string(l) + ": mean " + num(d.mean, 4) + ", std " +
                              num(d.stddev, 4) + ", p10 " + num(d.p10, 4) + ", p90 " + num(d.p90, 4) + "</title>";
      if (d.mean < lo || d.mean > hi) {
        // Off the panel: a triangle at the edge pointing out, with the value.
        double const dir = d.mean < lo ? 1 : -1;
        os << "<polygon fill=\"#d0342c\" points=\"" << num(x - 5, 1) << "," << num(y - 7 * dir, 1) << " "
           << num(x + 5, 1) << "," << num(y - 7 * dir, 1) << " " << num(x, 1) << "," << num(y, 1) << "\">" << tip
           << "</polygon>\n";
        os << "<text x=\"" << num(x + (l == n - 1 ? -7 : 7), 1) << "\" y=\"" << num(y - 10 * dir + 3, 1)
           << "\" text-anchor=\"" << (l == n - 1 ? "end" : "start") << "\" fill=\"#d0342c\">layer " << l << ": "
           << num(d.mean, 3) << "</text>\n";
      } else {
        os << "<circle cx=\"" << num(x, 1) << "\" cy=\"" << num(y, 1) << "\" r=\"3\">" << tip << "</circle>\n";
      }
    }
    os << "</g>\n</g>\n";
  };
  double olo = 0;  // the overview: from a multiple of 0.25 at or below every band edge and p10, up to 1
  for (LayerProfile const& l : p.layers) {
    for (double const v : {l.cosine.p10, l.cosine.mean - l.cosine.stddev}) {
      if (finite(v)) olo = std::min(olo, v);
    }
  }
  olo = std::max(-1.0, std::floor(olo * 4 + 1e-9) / 4);
  panel("overview", "All layers", overview_top, overview_h, olo, 1.0, 0.25);
  panel("zoom", ("Zoom on the typical layers (" + num(zlo, 2) + " to " + num(zhi, 2) + ")").c_str(), zoom_top, zoom_h,
        zlo, zhi, zstep);
  os << "<text x=\"" << num(left + plot_w / 2, 1) << "\" y=\"" << num(zoom_top + zoom_h + 34, 1)
     << "\" text-anchor=\"middle\" font-size=\"12\">layer</text>\n";

  // Legend.
  double const ly = zoom_top + zoom_h + 62;
  os << "<g id=\"legend\" font-size=\"12\">\n"
     << "<line x1=\"" << left << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 24 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#1f5fa8\" stroke-width=\"2\"/><text x=\"" << left + 30 << "\" y=\"" << num(ly + 4, 1)
     << "\">mean</text>\n"
     << "<rect x=\"" << left + 80 << "\" y=\"" << num(ly - 6, 1)
     << "\" width=\"24\" height=\"12\" fill=\"#4a90d9\" fill-opacity=\"0.22\"/><text x=\"" << left + 110 << "\" y=\""
     << num(ly + 4, 1) << "\">mean \xC2\xB1 std</text>\n"
     << "<line x1=\"" << left + 210 << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 234 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#7a7a7a\" stroke-dasharray=\"2,3\"/><text x=\"" << left + 240 << "\" y=\"" << num(ly + 4, 1)
     << "\">p10 / p90</text>\n"
     << "<line x1=\"" << left + 330 << "\" y1=\"" << num(ly, 1) << "\" x2=\"" << left + 354 << "\" y2=\"" << num(ly, 1)
     << "\" stroke=\"#d0342c\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/><text x=\"" << left + 360 << "\" y=\""
     << num(ly + 4, 1) << "\">threshold " << num(tau, 3) << "</text>\n"
     << "</g>\n</svg>\n";
}

}  // namespace skipllm::engine::eval
