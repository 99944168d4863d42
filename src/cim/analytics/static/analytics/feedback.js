// The feedback page's charts: each label's share of the texts per period, and negative texts per topic (stacked).
(function () {
  "use strict";
  var data = document.getElementById("feedback-data");
  if (!data || !window.echarts) {
    return;
  }
  var chart = JSON.parse(data.textContent);
  var colours = { positive: "#198754", neutral: "#adb5bd", negative: "#dc3545" };
  var charts = [];

  var shares = document.getElementById("shares-chart");
  if (shares) {
    var totals = chart.shares.map(function (row) { return row.positive + row.neutral + row.negative; });
    var share = window.echarts.init(shares);
    share.setOption({
      tooltip: { trigger: "axis", valueFormatter: function (value) { return value + "%"; } },
      legend: { bottom: 0 },
      grid: { left: 40, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "category", data: chart.periods },
      yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
      series: ["negative", "neutral", "positive"].map(function (label) {
        return {
          name: chart.labels[label],
          type: "bar",
          stack: "share",
          itemStyle: { color: colours[label] },
          data: chart.shares.map(function (row, index) {
            return totals[index] ? Math.round(1000 * row[label] / totals[index]) / 10 : 0;
          })
        };
      })
    });
    charts.push(share);
  }

  var topics = document.getElementById("topics-chart");
  if (topics) {
    var trend = window.echarts.init(topics);
    trend.setOption({
      tooltip: { trigger: "axis" },
      legend: { bottom: 0, type: "scroll" },
      grid: { left: 40, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "category", data: chart.periods },
      yAxis: { type: "value", minInterval: 1, name: topics.dataset.title },
      series: chart.topics.map(function (topic) {
        return { name: topic.label, type: "bar", stack: "negative", data: topic.counts };
      })
    });
    charts.push(trend);
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (item) { item.resize(); });
  });
})();
