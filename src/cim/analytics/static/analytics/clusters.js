// Customer clusters: each cluster's mean of every feature as a share of the population's (100 = average).
(function () {
  "use strict";
  var element = document.getElementById("cluster-chart");
  var data = document.getElementById("cluster-chart-data");
  if (!element || !data || !window.echarts) {
    return;
  }
  var chart = JSON.parse(data.textContent);
  var echart = window.echarts.init(element);
  echart.setOption({
    tooltip: { trigger: "axis" },
    legend: { data: chart.clusters.map(function (c) { return c.name; }) },
    grid: { left: 48, right: 16, top: 40, bottom: 80 },
    xAxis: { type: "category", data: chart.features, axisLabel: { interval: 0, rotate: 30 } },
    yAxis: { type: "value" },
    series: chart.clusters.map(function (c) {
      return {
        name: c.name,
        type: "bar",
        data: c.values,
        markLine: { silent: true, symbol: "none", data: [{ yAxis: 100 }] }
      };
    })
  });
  window.addEventListener("resize", function () { echart.resize(); });
})();
