// The SVG chart library and the study plots: escaping, ticks, empty input, that every
// chart parses (librsvg) and rasterises to a PNG of the asked size.
#include <gtest/gtest.h>

#include <cmath>

#include "../data/data_test_util.h"
#include "deft/data/image.h"
#include "deft/tensor/error.h"
#include "deft/track/plot.h"
#include "deft/track/report.h"
#include "deft/track/study_plots.h"

namespace deft::track {
namespace {

using test_util::TempDir;

const std::string kEvil = "<script>alert(1)</script>";

StudyRecord study(const std::string& name, std::vector<Direction> dirs = {Direction::Maximize}) {
  StudyRecord s;
  s.id = 1;
  s.name = name;
  s.directions = std::move(dirs);
  s.user_attrs = {{"metric", "val_accuracy"}};
  return s;
}

// A few trials: complete ones with intermediate values, a pruned and a failed one.
std::vector<TrialRecord> trials(size_t n_objectives = 1) {
  std::vector<TrialRecord> out;
  const Distribution lr = Distribution::float_range(1e-4, 1e-1, true);
  const Distribution opt = Distribution::categorical({"adam", kEvil});
  for (int64_t i = 0; i < 8; ++i) {
    TrialRecord t;
    t.id = i + 1;
    t.number = i;
    t.state = i == 5 ? TrialState::Pruned : i == 6 ? TrialState::Fail : TrialState::Complete;
    t.params = {{"lr", std::pow(10.0, -4 + 0.4 * i)}, {"optimizer", static_cast<double>(i % 2)}};
    t.distributions = {{"lr", lr}, {"optimizer", opt}};
    const double v = 0.5 + 0.05 * i;
    for (int64_t s = 1; s <= (i == 5 ? 1 : 3); ++s) t.intermediate[s] = {v - 0.1 / static_cast<double>(s)};
    if (t.state != TrialState::Fail) t.values = std::vector<double>(n_objectives, v);
    if (n_objectives == 2 && !t.values.empty()) t.values[1] = 1.0 / (1 + i);
    t.start_time = 1000 + 10 * i;
    t.end_time = t.start_time + 9;
    out.push_back(t);
  }
  return out;
}

std::vector<MetricPoint> curves() {
  std::vector<MetricPoint> p;
  for (int64_t e = 1; e <= 5; ++e) {
    p.push_back({"loss", e, 1.0 / static_cast<double>(e), 0});
    p.push_back({"val_loss", e, 1.2 / static_cast<double>(e), 0});
    p.push_back({"accuracy", e, 0.5 + 0.08 * static_cast<double>(e), 0});
    p.push_back({"val_accuracy", e, 0.45 + 0.08 * static_cast<double>(e), 0});
    p.push_back({"f1_macro", e, 0.4 + 0.08 * static_cast<double>(e), 0});
    p.push_back({"lr", e, 1e-3, 0});
    p.push_back({"batch/loss", e * 10, 0.5, 0});
  }
  return p;
}

void expect_parses(const std::string& svg, const std::string& what) {
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u) << what;
  try {
    const auto [w, h] = svg::svg_size(svg);
    EXPECT_GT(w, 0) << what;
    EXPECT_GT(h, 0) << what;
  } catch (const InputError& e) {
    ADD_FAILURE() << what << ": " << e.what() << "\n" << svg.substr(0, 2000);
  }
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(Plot, EscapesMarkupQuotesControlCharactersAndBadUtf8) {
  EXPECT_EQ(svg::escape(kEvil), "&lt;script&gt;alert(1)&lt;/script&gt;");
  EXPECT_EQ(svg::escape("a&b \"q\" 'x'"), "a&amp;b &quot;q&quot; &#39;x&#39;");
  EXPECT_EQ(svg::escape(std::string("a\x01" "b\x1f", 4)), "ab");
  EXPECT_EQ(svg::escape("\xC3\xA9t\xC3\xA9"), "\xC3\xA9t\xC3\xA9");         // UTF-8 kept
  EXPECT_EQ(svg::escape("a\xFF" "b"), "a\xEF\xBF\xBD" "b");                // invalid byte replaced
  EXPECT_EQ(svg::escape("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // truncated sequence
}

TEST(Plot, AStudyNamedLikeAScriptAppearsOnlyAsText) {
  const StudyRecord s = study(kEvil);
  const auto t = trials();
  for (const std::string& svg : {plot_optimization_history(s, t), plot_intermediate_values(s, t),
                                 plot_parallel_coordinates(s, t), plot_param_importance(s, t), plot_pareto_front(s, t),
                                 plot_optimization_history(s, {})}) {
    EXPECT_EQ(svg.find("<script"), std::string::npos) << svg.substr(0, 600);
    EXPECT_NE(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos) << svg.substr(0, 600);
    expect_parses(svg, "evil study");
  }
  // the categorical choice named like a script, on the parallel coordinates' axis
  EXPECT_GE(count(plot_parallel_coordinates(s, t), "&lt;script&gt;alert(1)"), 2u);  // title + category
  ReportData d;
  d.study = s;
  d.trials = t;
  d.dataset = kEvil;
  d.notes = {kEvil};
  d.best_trial = {.run = kEvil + "-trial-3", .points = curves(), .note = kEvil};  // the run's name comes from the study's
  d.final_model = {.run = kEvil + "-final", .points = curves()};
  const std::string html = study_report_html(d);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("Study &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  expect_parses(plot_confusion_matrix({{1, 2}, {3, 4}}, {kEvil, "b"}), "confusion");
  EXPECT_EQ(plot_confusion_matrix({{1, 2}, {3, 4}}, {kEvil, "b"}).find("<script"), std::string::npos);
}

TEST(Plot, NiceTicksCoverTheRangeInSteps125) {
  auto t = svg::nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t.front(), 0);
  EXPECT_DOUBLE_EQ(t.back(), 1);
  EXPECT_NEAR(t[1], 0.2, 1e-12);
  t = svg::nice_ticks(0.853, 0.921, 6);
  EXPECT_LE(t.front(), 0.853);
  EXPECT_GE(t.back(), 0.921);
  EXPECT_NEAR(t[1] - t[0], 0.01, 1e-12);
  EXPECT_GE(t.size(), 4u);
  EXPECT_LE(t.size(), 12u);
  t = svg::nice_ticks(-37, 512, 6);
  EXPECT_NEAR(t[1] - t[0], 100, 1e-9);
  EXPECT_DOUBLE_EQ(t.front(), -100);
  EXPECT_DOUBLE_EQ(t.back(), 600);
  t = svg::nice_ticks(3, 3, 6);  // one value: a range around it
  ASSERT_GE(t.size(), 2u);
  EXPECT_LT(t.front(), 3);
  EXPECT_GT(t.back(), 3);
  EXPECT_TRUE(svg::nice_ticks(NAN, 1).empty());
  EXPECT_EQ(svg::log_ticks(1e-4, 1e-2), (std::vector<double>{1e-4, 1e-3, 1e-2}));
  EXPECT_EQ(svg::log_ticks(0.15, 0.8), (std::vector<double>{0.1, 0.2, 0.5, 1.0}));
  EXPECT_EQ(svg::format_tick(0.1 + 0.2, 0.1), "0.3");
  EXPECT_EQ(svg::format_tick(-1e-17, 0.5), "0.0");
  EXPECT_EQ(svg::format_tick(250, 50), "250");
  EXPECT_EQ(svg::format_value(0.912345), "0.9123");
  EXPECT_EQ(svg::format_value(NAN), "-");
}

TEST(Plot, EmptyStudiesAndSeriesSayNoDataAndStillParse) {
  const StudyRecord s = study("empty");
  for (const std::string& svg : {plot_optimization_history(s, {}), plot_intermediate_values(s, {}),
                                 plot_parallel_coordinates(s, {}), plot_param_importance(s, {}), plot_learning_curves({}),
                                 plot_confusion_matrix({}, {}), svg::image_grid("x", {})}) {
    expect_parses(svg, "empty");
    EXPECT_NE(svg.find("deft-empty"), std::string::npos) << svg;
  }
  EXPECT_NE(plot_optimization_history(s, {}).find("no complete trial yet"), std::string::npos);
  // only pruned/failed trials: nothing to plot, and it says how many there were
  auto t = trials();
  for (auto& x : t)
    if (x.state == TrialState::Complete) x.state = TrialState::Pruned;
  EXPECT_NE(plot_optimization_history(s, t).find("7 pruned"), std::string::npos);
  svg::XYChart c;
  c.series.push_back({.name = "nan", .x = {1, 2}, .y = {NAN, INFINITY}});
  EXPECT_NE(svg::xy_chart(c).find("no data"), std::string::npos);
}

TEST(Plot, HistoryCountsOnlyCompleteTrialsAndTracksTheBestByDirection) {
  auto t = trials();
  const std::string mx = plot_optimization_history(study("s"), t);
  expect_parses(mx, "history");
  EXPECT_NE(mx.find("6 complete trials"), std::string::npos);
  EXPECT_NE(mx.find("1 pruned, 1 failed"), std::string::npos);
  EXPECT_EQ(count(mx, "><title>trial "), 6u);  // one marker per complete trial, none for pruned/failed
  EXPECT_NE(mx.find("best 0.85"), std::string::npos);  // trial 7 (0.5 + 0.35), maximised
  const std::string mn = plot_optimization_history(study("s", {Direction::Minimize}), t);
  EXPECT_NE(mn.find("best 0.5"), std::string::npos);
  const std::string multi = plot_optimization_history(study("m", {Direction::Maximize, Direction::Minimize}), trials(2));
  EXPECT_NE(multi.find("objective 1 of 2"), std::string::npos);
}

TEST(Plot, IntermediateValuesMarkPrunedTrialsAndHaveALegend) {
  const std::string svg = plot_intermediate_values(study("s"), trials());
  expect_parses(svg, "intermediate");
  EXPECT_EQ(count(svg, "class=\"trial complete\""), 6u);
  EXPECT_EQ(count(svg, "class=\"trial pruned\""), 1u);
  EXPECT_EQ(count(svg, "class=\"pruned-mark\""), 1u);
  EXPECT_NE(svg.find(">complete</text>"), std::string::npos);  // legend entries
  EXPECT_NE(svg.find(">pruned"), std::string::npos);
  EXPECT_NE(svg.find("trial 5 pruned at step 1"), std::string::npos);
}

TEST(Plot, ParallelCoordinatesImportanceParetoAndCurvesParse) {
  const auto t = trials();
  const std::string pc = plot_parallel_coordinates(study("s"), t);
  expect_parses(pc, "parallel");
  EXPECT_EQ(count(pc, "<path d=\"M"), 6u);  // one line per complete trial
  EXPECT_NE(pc.find(">adam</text>"), std::string::npos);
  const std::string imp = plot_param_importance(study("s"), t);
  expect_parses(imp, "importance");
  EXPECT_NE(imp.find("fANOVA"), std::string::npos);
  EXPECT_EQ(count(imp, "class=\"bar\""), 2u);
  const std::string pf = plot_pareto_front(study("p", {Direction::Maximize, Direction::Minimize}), trials(2));
  expect_parses(pf, "pareto");
  EXPECT_NE(pf.find("Pareto front"), std::string::npos);
  const std::string lc = plot_learning_curves(curves());
  expect_parses(lc, "curves");
  for (const char* panel : {">loss</text>", ">accuracy</text>", ">f1_macro</text>", ">train</text>", ">validation</text>"})
    EXPECT_NE(lc.find(panel), std::string::npos) << panel;
  EXPECT_EQ(lc.find("batch/loss"), std::string::npos);
  EXPECT_EQ(lc.find(">lr</text>"), std::string::npos);
  EXPECT_LT(lc.find(">loss</text>"), lc.find(">accuracy</text>"));  // loss panel first
  const std::string cm = plot_confusion_matrix({{50, 2, 0}, {3, 40, 7}, {0, 0, 9}}, {"ant", "bee", "cat"});
  expect_parses(cm, "confusion");
  EXPECT_NE(cm.find(">40</text>"), std::string::npos);
  EXPECT_NE(cm.find("111 examples"), std::string::npos);
}

TEST(Plot, SvgToPngWritesAPngOfTheAskedWidth) {
  TempDir dir;
  const std::string svg = plot_optimization_history(study("png"), trials());
  const auto [w, h] = svg::svg_size(svg);
  svg::svg_to_png(svg, dir.file("h.png"), 1000);
  const Tensor img = data::decode_image(dir.file("h.png"));
  ASSERT_EQ(img.dim(), 3);
  EXPECT_EQ(img.size(0), 3);
  EXPECT_EQ(img.size(2), 1000);
  EXPECT_EQ(img.size(1), std::lround(h * 1000 / w));
  // not blank: the chart drew dark pixels on the white background
  const auto px = img.to_vector<uint8_t>();
  EXPECT_LT(*std::min_element(px.begin(), px.end()), 100);
  EXPECT_THROW(svg::svg_to_png("<svg><g></svg>", dir.file("bad.png")), InputError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("bad.png")));
}

TEST(Plot, EncodePngRoundTripsAndImageGridsEmbedThem) {
  std::vector<uint8_t> rgb(4 * 5 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  const std::string png = svg::encode_png(rgb.data(), 4, 5, 3);
  const Tensor back = data::decode_image_bytes(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "png");
  ASSERT_EQ(back.shape(), (Shape{3, 4, 5}));
  const auto chw = back.to_vector<uint8_t>();
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(chw[(c * 4 + y) * 5 + x], rgb[(y * 5 + x) * 3 + c]);
  const std::string grid = svg::image_grid("grid", {{png, 5, 4, "true: a", "pred: b", kEvil}, {png, 5, 4, "c", "", ""}});
  expect_parses(grid, "grid");
  EXPECT_EQ(count(grid, "data:image/png;base64,"), 2u);
  EXPECT_EQ(grid.find("<script"), std::string::npos);
  EXPECT_EQ(svg::base64("Man"), "TWFu");
  EXPECT_EQ(svg::base64("Ma"), "TWE=");
  EXPECT_EQ(svg::base64("M"), "TQ==");
}

}  // namespace
}  // namespace deft::track
