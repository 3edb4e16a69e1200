#include "eval/heatmap.hpp"
#include "eval/xml_escape.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <vector>

namespace skipllm::engine {

namespace {

using eval::xml_escape;

struct Category {
  char letter;
  char const* colour;
  char const* label;
};

// Legend order. Skipped is the one colour that stands out; of the three reasons a block ran, the
// policy's own choice is blue and the two forced ones are neutral greys.
constexpr Category kCategories[] = {
    {'S', "#ffb000", "skipped"},           {'R', "#2f6db5", "ran (policy)"}, {'C', "#3a3d4d", "ran (cold layer)"},
    {'D', "#a3a7b5", "ran (dense token)"}, {'I', "#2ca25f", "stood in"},  // listed only when a stand-in ran
};

char letter_of(FfnDecision d) {
  switch (d) {
    case FfnDecision::kRun: return 'R';
    case FfnDecision::kSkip: return 'S';
    case FfnDecision::kRunCold: return 'C';
    case FfnDecision::kRunDense: return 'D';
    case FfnDecision::kStandIn: return 'I';
  }
  return 'R';
}

std::string percent(std::uint64_t num, std::uint64_t den) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", den ? 100.0 * static_cast<double>(num) / static_cast<double>(den) : 0.0);
  return buf;
}

std::uint64_t count_of(Category const& c, HeatmapCounts const& n) {
  switch (c.letter) {
    case 'S': return n.skipped;
    case 'R': return n.ran;
    case 'C': return n.cold;
    case 'I': return n.stood_in;
    default: return n.dense;
  }
}

std::string legend_label(Category const& c, HeatmapCounts const& n) {
  return std::string(c.label) + " " + std::to_string(count_of(c, n)) + " (" + percent(count_of(c, n), n.total()) + ")";
}

// Traces without stand-ins keep their four-entry legend.
bool in_legend(Category const& c, HeatmapCounts const& n) { return c.letter != 'I' || n.stood_in > 0; }

// Horizontal space of one legend entry: swatch, gap, text (about 7 px a character at 12 px).
long legend_advance(std::string const& label) { return 40 + static_cast<long>(label.size()) * 7; }

// The smallest of 1, 2, 5, 10, 20, 50, ... whose spacing in pixels is at least `min_px`.
long nice_step(int cell_px, int min_px) {
  long step = 1;
  for (long scale = 1; scale < 1'000'000'000L; scale *= 10) {
    for (long const m : {1L, 2L, 5L}) {
      step = m * scale;
      if (step * cell_px >= min_px) return step;
    }
  }
  return step;
}

}  // namespace

HeatmapCounts count_decisions(DecisionTrace const& trace) {
  HeatmapCounts c;
  for (std::size_t i = 0; i < trace.size(); ++i) {
    for (FfnDecision const d : trace.decisions(i)) {
      switch (d) {
        case FfnDecision::kRun: ++c.ran; break;
        case FfnDecision::kSkip: ++c.skipped; break;
        case FfnDecision::kRunCold: ++c.cold; break;
        case FfnDecision::kRunDense: ++c.dense; break;
        case FfnDecision::kStandIn: ++c.stood_in; break;
      }
    }
  }
  return c;
}

void write_heatmap_svg(std::ostream& os, DecisionTrace const& trace, HeatmapOptions const& options) {
  long const tokens = static_cast<long>(trace.size());
  int const layers = std::max(trace.num_layers(), 0);
  HeatmapCounts const counts = count_decisions(trace);

  // Geometry: integer pixel cells, so that crisp edges leave no seams between them.
  int const max_cell_w = std::max(options.max_cell_width, 1);
  int const cell_w =
      tokens > 0 ? static_cast<int>(std::clamp<long>(options.max_plot_width / tokens, 1, max_cell_w)) : max_cell_w;
  int const cell_h = layers <= 48 ? 14 : std::max(2, 640 / std::max(layers, 1));
  std::string const headline = options.title + ": skip ratio " + percent(counts.skipped, counts.total()) + " (" +
                               std::to_string(counts.skipped) + " of " + std::to_string(counts.total()) +
                               " FFN blocks skipped)";
  // Subtitle lines: the caller's (split at newlines), then the size of the picture.
  std::vector<std::string> notes;
  for (std::size_t begin = 0; begin < options.subtitle.size();) {
    std::size_t const end = std::min(options.subtitle.find('\n', begin), options.subtitle.size());
    if (end > begin) notes.push_back(options.subtitle.substr(begin, end - begin));
    begin = end + 1;
  }
  notes.push_back(std::to_string(layers) + " layers x " + std::to_string(tokens) + " decoded tokens");
  int const left = 64, right = 24;
  int const top = 44 + 16 * static_cast<int>(notes.size());
  long const plot_w = std::max<long>(cell_w * tokens, 160);
  long const plot_h = static_cast<long>(cell_h) * layers;
  // Wide enough for the longest text line (estimated per character) and the legend.
  long text_w = static_cast<long>(headline.size()) * 19 / 2;  // 16 px bold
  for (std::string const& n : notes) text_w = std::max<long>(text_w, static_cast<long>(n.size()) * 13 / 2);
  long legend_w = 0;
  for (Category const& c : kCategories)
    if (in_legend(c, counts)) legend_w += legend_advance(legend_label(c, counts));
  long const width = std::max<long>({left + plot_w + right, left + text_w + right, left + legend_w + right, 480});
  long const axis_y = top + plot_h;
  long const legend_y = axis_y + 52;
  long const height = legend_y + 34;

  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height << "\" viewBox=\"0 0 "
     << width << ' ' << height << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
     << "<title>" << xml_escape(headline) << "</title>\n"
     << "<style>\n";
  for (Category const& c : kCategories) os << "  ." << c.letter << " { fill: " << c.colour << "; }\n";
  os << "  text { fill: #222; }\n"
     << "  .tick { stroke: #555; stroke-width: 1; }\n"
     << "</style>\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
     << "<text x=\"" << left << "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">" << xml_escape(headline)
     << "</text>\n";
  for (std::size_t i = 0; i < notes.size(); ++i) {
    os << "<text x=\"" << left << "\" y=\"" << 42 + 16 * static_cast<long>(i) << "\" font-size=\"11\">"
       << xml_escape(notes[i]) << "</text>\n";
  }

  // The cells, one <rect> each.
  os << "<g id=\"cells\" shape-rendering=\"crispEdges\">\n";
  for (long i = 0; i < tokens; ++i) {
    auto const d = trace.decisions(static_cast<std::size_t>(i));
    long const x = left + i * cell_w;
    for (int l = 0; l < layers; ++l) {
      os << "<rect x=\"" << x << "\" y=\"" << top + static_cast<long>(l) * cell_h << "\" width=\"" << cell_w
         << "\" height=\"" << cell_h << "\" class=\"" << letter_of(d[static_cast<std::size_t>(l)]) << "\"/>\n";
    }
  }
  os << "</g>\n";
  if (tokens == 0) {
    os << "<text x=\"" << left + 8 << "\" y=\"" << top + plot_h / 2 + 4 << "\">no decoded tokens</text>\n";
  }
  os << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << cell_w * tokens << "\" height=\"" << plot_h
     << "\" fill=\"none\" stroke=\"#555\" shape-rendering=\"crispEdges\"/>\n";

  // Y axis: layer numbers, as dense as the cell height allows.
  os << "<g id=\"y-axis\" font-size=\"10\" text-anchor=\"end\">\n";
  long const layer_step = nice_step(cell_h, 12);
  for (int l = 0; l < layers; l += static_cast<int>(layer_step)) {
    os << "<text x=\"" << left - 6 << "\" y=\"" << top + static_cast<long>(l) * cell_h + cell_h / 2 + 4 << "\">" << l
       << "</text>\n";
  }
  os << "</g>\n"
     << "<text transform=\"translate(18," << top + plot_h / 2
     << ") rotate(-90)\" text-anchor=\"middle\">layer</text>\n";

  // X axis: decode index of the token under each tick.
  os << "<g id=\"x-axis\" font-size=\"10\" text-anchor=\"middle\">\n";
  long const token_step = nice_step(cell_w, 44);
  for (long i = 0; i < tokens; i += token_step) {
    long const x = left + i * cell_w + cell_w / 2;
    os << "<line class=\"tick\" x1=\"" << x << "\" y1=\"" << axis_y << "\" x2=\"" << x << "\" y2=\"" << axis_y + 4
       << "\"/><text x=\"" << x << "\" y=\"" << axis_y + 16 << "\">"
       << trace.token(static_cast<std::size_t>(i)).decode_index << "</text>\n";
  }
  os << "</g>\n"
     << "<text x=\"" << left + cell_w * tokens / 2 << "\" y=\"" << axis_y + 34
     << "\" text-anchor=\"middle\">decoded token (decode index)</text>\n";

  // Legend: swatch, label, count and share of all blocks.
  os << "<g id=\"legend\">\n";
  long x = left;
  for (Category const& c : kCategories) {
    if (!in_legend(c, counts)) continue;
    std::string const label = legend_label(c, counts);
    os << "<rect x=\"" << x << "\" y=\"" << legend_y - 11 << "\" width=\"14\" height=\"14\" class=\"" << c.letter
       << " swatch\" stroke=\"#555\"/><text x=\"" << x + 20 << "\" y=\"" << legend_y << "\">" << xml_escape(label)
       << "</text>\n";
    x += legend_advance(label);
  }
  os << "</g>\n</svg>\n";
}

std::string heatmap_svg(DecisionTrace const& trace, HeatmapOptions const& options) {
  std::ostringstream os;
  write_heatmap_svg(os, trace, options);
  return os.str();
}

}  // namespace skipllm::engine
