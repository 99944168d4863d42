// The survey report chart: CSAT (% of 4–5 answers, left axis) and NPS (−100…100, right axis) per group.
(function () {
  "use strict";
  var element = document.getElementById("survey-chart");
  var data = document.getElementById("survey-chart-data");
  if (!element || !data || !window.echarts) {
    return;
  }
  var rows = JSON.parse(data.textContent);
  var chart = window.echarts.init(element);
  chart.setOption({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 44, right: 44, top: 32, bottom: 28 },
    xAxis: { type: "category", data: rows.map(function (row) { return row.label; }) },
    yAxis: [
      { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      { type: "value", min: -100, max: 100 }
    ],
    series: [
      { name: element.dataset.csat, type: "bar", data: rows.map(function (row) { return row.csat; }) },
      { name: element.dataset.nps, type: "line", yAxisIndex: 1, smooth: true, connectNulls: true,
        data: rows.map(function (row) { return row.nps; }) }
    ]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
