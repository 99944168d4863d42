// The acquisition page's charts: CLV beside CAC per channel, and each channel's CAC month by month.
(function () {
  "use strict";
  var data = document.getElementById("acquisition-data");
  var bars = document.getElementById("acquisition-bars");
  var trend = document.getElementById("acquisition-trend");
  if (!data || !bars || !trend || !window.echarts) {
    return;
  }
  var figures = JSON.parse(data.textContent);
  var charts = [];

  var channels = figures.channels;
  var barChart = window.echarts.init(bars);
  barChart.setOption({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 56, right: 16, top: 32, bottom: 48 },
    xAxis: { type: "category", data: channels.map(function (row) { return row.label; }), axisLabel: { interval: 0, rotate: 30 } },
    yAxis: { type: "value" },
    series: [
      { name: bars.dataset.clv, type: "bar", data: channels.map(function (row) { return row.clv; }) },
      { name: bars.dataset.cac, type: "bar", data: channels.map(function (row) { return row.cac; }) }
    ]
  });
  charts.push(barChart);

  // Every month of the period on the axis; a line per channel, with gaps where a month has no CAC.
  var months = figures.months;
  var lines = {};
  figures.history.forEach(function (row) {
    lines[row.channel] = lines[row.channel] || { name: row.label, values: {} };
    lines[row.channel].values[row.month] = row.cac;
  });
  var series = Object.keys(lines).filter(function (channel) {
    return Object.keys(lines[channel].values).some(function (month) { return lines[channel].values[month] !== null; });
  }).map(function (channel) {
    return {
      name: lines[channel].name,
      type: "line",
      connectNulls: false,
      data: months.map(function (month) {
        var value = lines[channel].values[month];
        return value === undefined ? null : value;
      })
    };
  });
  var trendChart = window.echarts.init(trend);
  trendChart.setOption({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 56, right: 16, top: 32, bottom: 32 },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value" },
    series: series
  });
  charts.push(trendChart);

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
