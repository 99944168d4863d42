// The data-quality trend: completeness of the customers created each month, from the page's JSON.
(function () {
  "use strict";
  var element = document.getElementById("quality-trend");
  var data = document.getElementById("quality-trend-data");
  if (!element || !data || !window.echarts) {
    return;
  }
  var rows = JSON.parse(data.textContent);
  var chart = window.echarts.init(element);
  chart.setOption({
    tooltip: { trigger: "axis", valueFormatter: function (value) { return value + "%"; } },
    grid: { left: 40, right: 16, top: 16, bottom: 28 },
    xAxis: { type: "category", data: rows.map(function (row) { return row.month; }) },
    yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
    series: [{
      name: element.dataset.label,
      type: "line",
      smooth: true,
      data: rows.map(function (row) { return Math.round(row.score * 100); })
    }]
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
