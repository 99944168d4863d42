// The dashboard's charts: revenue and active customers over the period, new customers by channel, and the cohort
// retention heatmap, all from the page's JSON (the server computed every figure).
(function () {
  "use strict";
  var source = document.getElementById("dashboard-data");
  if (!source || !window.echarts) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var charts = [];

  function draw(id, option, empty) {
    var element = document.getElementById(id);
    if (!element) {
      return;
    }
    if (empty) {
      element.textContent = element.dataset.empty || "";
      element.classList.add("text-body-secondary", "small");
      element.style.height = "auto";
      return;
    }
    var chart = window.echarts.init(element);
    chart.setOption(option);
    charts.push(chart);
  }

  var trend = document.getElementById("chart-trend");
  draw("chart-trend", {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 56, right: 48, top: 32, bottom: 32 },
    xAxis: { type: "category", data: data.trend.map(function (row) { return row[0]; }) },
    yAxis: [{ type: "value" }, { type: "value", minInterval: 1 }],
    series: [
      { name: trend && trend.dataset.revenue, type: "bar", data: data.trend.map(function (row) { return row[1]; }) },
      { name: trend && trend.dataset.orders, type: "line", yAxisIndex: 1, data: data.trend.map(function (row) { return row[2]; }) },
      { name: trend && trend.dataset.active, type: "line", yAxisIndex: 1, data: data.trend.map(function (row) { return row[3]; }) }
    ]
  }, false);

  draw("chart-channels", {
    tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
    series: [{
      type: "pie",
      radius: ["35%", "70%"],
      data: data.channels.map(function (row) { return { name: row[0], value: row[1] }; })
    }]
  }, data.channels.length === 0);

  var cohorts = data.cohorts;
  var cohortElement = document.getElementById("chart-cohorts");
  var offsets = [];
  for (var i = 1; i <= cohorts.offsets; i++) {
    offsets.push(String(i));
  }
  draw("chart-cohorts", {
    tooltip: {
      formatter: function (item) {
        var row = item.value[1];
        return cohorts.months[row] + " (" + cohorts.sizes[row] + ") · +" + (item.value[0]) + ": " + item.value[2] + "%";
      }
    },
    grid: { left: 96, right: 16, top: 8, bottom: 40 },
    xAxis: { type: "category", data: offsets, name: cohortElement && cohortElement.dataset.month, nameLocation: "middle", nameGap: 26 },
    yAxis: {
      type: "category",
      inverse: true,
      data: cohorts.months.map(function (month, row) { return month + " (" + cohorts.sizes[row] + ")"; })
    },
    visualMap: { min: 0, max: 100, show: false, inRange: { color: ["#f8f9fa", "#0d6efd"] } },
    series: [{
      type: "heatmap",
      label: { show: true, formatter: function (item) { return item.value[2] + "%"; } },
      // x: months after the first (1, 2, …), drawn from column 0.
      data: cohorts.cells.map(function (cell) { return [cell[0] - 1, cell[1], cell[2]]; })
    }]
  }, cohorts.months.length === 0 || cohorts.offsets === 0);

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();
