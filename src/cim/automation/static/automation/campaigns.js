// The campaign report's charts: sent → delivered → opened → clicked → converted per variant, and opens and clicks
// per hour since the start.
(function () {
  "use strict";
  var data = document.getElementById("campaign-chart");
  if (!data || !window.echarts) {
    return;
  }
  var chart = JSON.parse(data.textContent);
  var charts = [];

  var funnel = document.getElementById("campaign-funnel");
  if (funnel) {
    var bars = window.echarts.init(funnel);
    bars.setOption({
      tooltip: { trigger: "axis" },
      legend: { bottom: 0 },
      grid: { left: 48, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "category", data: chart.stages.map(function (stage) { return stage[0]; }) },
      yAxis: { type: "value", minInterval: 1 },
      series: chart.labels.map(function (label, index) {
        return {
          name: chart.text.variant + " " + label,
          type: "bar",
          data: chart.stages.map(function (stage) { return stage[1][index]; })
        };
      })
    });
    charts.push(bars);
  }

  var hourly = document.getElementById("campaign-hourly");
  if (hourly) {
    var lines = window.echarts.init(hourly);
    lines.setOption({
      tooltip: { trigger: "axis" },
      legend: { bottom: 0 },
      grid: { left: 48, right: 16, top: 16, bottom: 56 },
      xAxis: { type: "time" },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: chart.text.opens, type: "line", data: chart.hourly.map(function (row) { return [row[0], row[1]]; }) },
        { name: chart.text.clicks, type: "line", data: chart.hourly.map(function (row) { return [row[0], row[2]]; }) }
      ]
    });
    charts.push(lines);
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
})();
