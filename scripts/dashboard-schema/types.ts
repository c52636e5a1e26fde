// The shapes every dashboard JSON in dashboards/ must have, built from Grafana's published
// schema types (@grafana/schema, the TypeScript generated from Grafana's CUE kinds) so that
// tsc checks the JSON mechanically. check.js writes each dashboard as object literals typed with
// these (excess properties are errors, string enums must be one of their values).
//
// From @grafana/schema: Dashboard, Panel, RowPanel, VariableModel, FieldConfig(Source),
// DataQuery, DataSourceRef, and each panel plugin's Options and FieldConfig (panelcfg). Not in
// the package (11.6 has no Prometheus query type, and no lists of matcher or transformation
// ids), so defined here: PromQuery (the fields of Grafana's Prometheus query we use, from
// @grafana/prometheus's PromQuery), MatcherId and TransformationId.

import type * as schema from '@grafana/schema';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as piechart from '@grafana/schema/dist/esm/raw/composable/piechart/panelcfg/x/PieChartPanelCfg_types.gen';
import type * as bargauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as statetimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';

/** A schema type as JSON spells it: string enums become the union of their values. */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;

/** What our panels and queries reference: the `datasource` variable of type prometheus. */
export type PromDatasource = { type: 'prometheus'; uid: '${datasource}' };

/** A Prometheus query: DataQuery (refId, hide, queryType, datasource) plus Prometheus' fields. */
export type PromQuery = Omit<Json<schema.DataQuery>, 'datasource'> & {
  datasource: PromDatasource;
  expr: string;
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  format?: 'time_series' | 'table' | 'heatmap';
  legendFormat?: string;
  interval?: string;
  intervalFactor?: number;
  editorMode?: 'code' | 'builder';
};

/** Grafana's field matchers (FieldMatcherID). */
export type MatcherId = 'byName' | 'byRegexp' | 'byType' | 'byFrameRefID' | 'byValue' | 'byNames' | 'byRegexpOrNames';

/** Grafana's transformations used or likely here (DataTransformerID). */
export type TransformationId =
  | 'merge' | 'organize' | 'joinByField' | 'seriesToRows' | 'labelsToFields' | 'sortBy'
  | 'filterFieldsByName' | 'reduce' | 'calculateField' | 'groupBy' | 'filterByValue' | 'limit';

/** Field defaults: the schema's FieldConfig with the panel type's own `custom` options. */
export type Defaults<Custom> = Omit<Json<schema.FieldConfig>, 'custom'> & { custom?: Json<Custom> };

/** An override property: a FieldConfig key, or `custom.<key>` of the panel type's custom options. */
export type PropertyId<Custom> = Exclude<keyof schema.FieldConfig, 'custom'> | `custom.${keyof Custom & string}`;

export type Override<Custom> = {
  matcher: { id: MatcherId; options?: unknown };
  properties: Array<{ id: PropertyId<Custom>; value?: unknown }>;
};

/** A panel of one plugin type: the schema's Panel with that plugin's Options and FieldConfig. */
export type PanelOf<Type extends string, Options, Custom = Record<string, never>> = Omit<
  Json<schema.Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource' | 'transformations'
> & {
  type: Type;
  datasource: PromDatasource;
  targets: PromQuery[];
  options: Json<Options>;
  fieldConfig: { defaults: Defaults<Custom>; overrides: Array<Override<Custom>> };
  transformations?: Array<Omit<Json<schema.DataTransformerConfig>, 'id'> & { id: TransformationId }>;
};

export type StatPanel = PanelOf<'stat', stat.Options>;
export type TablePanel = PanelOf<'table', table.Options, table.FieldConfig>;
export type TimeSeriesPanel = PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>;
export type PieChartPanel = PanelOf<'piechart', piechart.Options, piechart.FieldConfig>;
export type BarGaugePanel = PanelOf<'bargauge', bargauge.Options>;
export type StateTimelinePanel = PanelOf<'state-timeline', statetimeline.Options, statetimeline.FieldConfig>;

/** An expanded row (collapsed rows would carry their panels inside). */
export type RowPanel = Omit<Json<schema.RowPanel>, 'panels'> & { panels: [] };

/** Panel type name to its shape: check.js picks the type by the panel's `type`. */
export type PanelTypes = {
  row: RowPanel;
  stat: StatPanel;
  table: TablePanel;
  timeseries: TimeSeriesPanel;
  piechart: PieChartPanel;
  bargauge: BarGaugePanel;
  'state-timeline': StateTimelinePanel;
};

export type Variable = Omit<Json<schema.VariableModel>, 'datasource'> & { datasource?: PromDatasource };

/** The dashboard without panels and variables, which are checked one by one. */
export type DashboardHead = Omit<Json<schema.Dashboard>, 'panels' | 'templating'> & {
  uid: string;
  title: string;
  panels: unknown[];
  templating: { list: unknown[] };
};
