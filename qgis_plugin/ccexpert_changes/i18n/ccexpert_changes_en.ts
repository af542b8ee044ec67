<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en">
<context>
    <name>CCExpert</name>
    <message>
        <location filename="../about.py"/>
        <source>1 chip</source>
        <translation>1 chip</translation>
    </message>
    <message>
        <location filename="../about.py"/>
        <source>{0} chips</source>
        <translation>{0} chips</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Describe changes</source>
        <translation>Describe changes</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>&lt;p&gt;Describes what changed between two co-registered rasters of the same place. The area of interest is cut into square chips on the Before raster's pixel grid; each Before/After pair of chips goes to a CCExpert backend, and the output gets one square per chip with a caption such as "two buildings are built on the bareland at the top", its confidence and whether anything changed.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Area of interest&lt;/b&gt;: a polygon layer (selected features only, if ticked) and/or an extent, such as the current map canvas extent; left empty, the whole area where both rasters overlap.&lt;/p&gt;&lt;p&gt;Chips with more nodata than the largest nodata share are not sent; they are kept as "skipped_nodata". &lt;b&gt;Resume&lt;/b&gt; keeps the tiles an earlier run into the same output captioned, so a canceled or failed run continues where it stopped; it refuses an output made from other rasters, bands, grid or model unless you tick "Resume even if the output was made from other inputs". Without Resume an existing output is replaced once the run captions its first tile.&lt;/p&gt;&lt;p&gt;Needs a running backend (&lt;i&gt;ccexpert serve&lt;/i&gt;); set its URL and API key in the CCExpert settings. Chip size 0 and the advanced request settings 0 take the backend's own values.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Change areas&lt;/b&gt; (on by default): a second layer, change_areas, in the same GeoPackage: neighbouring changed tiles of one kind of change (field Kind of change) as one area, with its number of tiles and objects.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Context note&lt;/b&gt; (advanced, at most 300 characters on one line): stored with the run and shown in its report; a general vision-language backend reads it before its prompt, CCExpert ignores it.&lt;/p&gt;</source>
        <translation>&lt;p&gt;Describes what changed between two co-registered rasters of the same place. The area of interest is cut into square chips on the Before raster's pixel grid; each Before/After pair of chips goes to a CCExpert backend, and the output gets one square per chip with a caption such as "two buildings are built on the bareland at the top", its confidence and whether anything changed.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Area of interest&lt;/b&gt;: a polygon layer (selected features only, if ticked) and/or an extent, such as the current map canvas extent; left empty, the whole area where both rasters overlap.&lt;/p&gt;&lt;p&gt;Chips with more nodata than the largest nodata share are not sent; they are kept as "skipped_nodata". &lt;b&gt;Resume&lt;/b&gt; keeps the tiles an earlier run into the same output captioned, so a canceled or failed run continues where it stopped; it refuses an output made from other rasters, bands, grid or model unless you tick "Resume even if the output was made from other inputs". Without Resume an existing output is replaced once the run captions its first tile.&lt;/p&gt;&lt;p&gt;Needs a running backend (&lt;i&gt;ccexpert serve&lt;/i&gt;); set its URL and API key in the CCExpert settings. Chip size 0 and the advanced request settings 0 take the backend's own values.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Change areas&lt;/b&gt; (on by default): a second layer, change_areas, in the same GeoPackage: neighbouring changed tiles of one kind of change (field Kind of change) as one area, with its number of tiles and objects.&lt;/p&gt;&lt;p&gt;&lt;b&gt;Context note&lt;/b&gt; (advanced, at most 300 characters on one line): stored with the run and shown in its report; a general vision-language backend reads it before its prompt, CCExpert ignores it.&lt;/p&gt;</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Before raster</source>
        <translation>Before raster</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>After raster</source>
        <translation>After raster</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Area of interest (default: where both rasters overlap)</source>
        <translation>Area of interest (default: where both rasters overlap)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Area of interest as an extent (e.g. the current map canvas extent)</source>
        <translation>Area of interest as an extent (e.g. the current map canvas extent)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Bands shown as red, green, blue (a one-band raster is read as grey)</source>
        <translation>Bands shown as red, green, blue (a one-band raster is read as grey)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Chip size in Before-raster pixels (0 = the model's chip size, asked from the backend)</source>
        <translation>Chip size in Before-raster pixels (0 = the model's chip size, asked from the backend)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Overlap between chips (pixels)</source>
        <translation>Overlap between chips (pixels)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Largest nodata share (0-1) of a chip that is still captioned</source>
        <translation>Largest nodata share (0-1) of a chip that is still captioned</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Backend URL</source>
        <translation>Backend URL</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>API key (authentication configuration)</source>
        <translation>API key (authentication configuration)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Chip pairs per request (0 = the backend's limit, at most 8)</source>
        <translation>Chip pairs per request (0 = the backend's limit, at most 8)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Requests at the backend at once (0 = the capacity the backend advertises)</source>
        <translation>Requests at the backend at once (0 = the capacity the backend advertises)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Resume: keep tiles already captioned in the output</source>
        <translation>Resume: keep tiles already captioned in the output</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Resume even if the output was made from other inputs (bands, stretch, model)</source>
        <translation>Resume even if the output was made from other inputs (bands, stretch, model)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Ask before runs of more chips than</source>
        <translation>Ask before runs of more chips than</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Context note (e.g. after the May 2011 tornado)</source>
        <translation>Context note (e.g. after the May 2011 tornado)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Also write change areas (layer change_areas: neighbouring tiles of one kind)</source>
        <translation>Also write change areas (layer change_areas: neighbouring tiles of one kind)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Change captions</source>
        <translation>Change captions</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Tiles in the grid</source>
        <translation>Tiles in the grid</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Tiles captioned in this run</source>
        <translation>Tiles captioned in this run</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Changed tiles in the output</source>
        <translation>Changed tiles in the output</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Tiles with errors in this run</source>
        <translation>Tiles with errors in this run</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Tiles skipped for nodata in this run</source>
        <translation>Tiles skipped for nodata in this run</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Tiles kept from an earlier run</source>
        <translation>Tiles kept from an earlier run</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>1 when the captions come from the demo model</source>
        <translation>1 when the captions come from the demo model</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Model that made the captions</source>
        <translation>Model that made the captions</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Run id</source>
        <translation>Run id</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Cannot create the folder of OUTPUT {0}: {1}</source>
        <translation>Cannot create the folder of OUTPUT {0}: {1}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0} of {1} px (stride {2}) over the area of interest</source>
        <translation>{0} of {1} px (stride {2}) over the area of interest</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>8-bit stretch shared by both dates (2-98 %): low {0}, high {1}</source>
        <translation>8-bit stretch shared by both dates (2-98 %): low {0}, high {1}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Context note: stored with the run; model {0} does not read it</source>
        <translation>Context note: stored with the run; model {0} does not read it</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0} tiles captioned ({1} changed), {2} errors, {3} skipped for nodata in the layer; {4} captioned in this run, {5} kept from before</source>
        <translation>{0} tiles captioned ({1} changed), {2} errors, {3} skipped for nodata in the layer; {4} captioned in this run, {5} kept from before</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Done: {0}; output {1}</source>
        <translation>Done: {0}; output {1}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>describe_changes run {0}: {1}; {2}</source>
        <translation>describe_changes run {0}: {1}; {2}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>No tile was captioned: {0} tile(s) failed. First error: {1}
The failed tiles are saved in {2} with their error; fix the problem and run again with Resume.</source>
        <translation>No tile was captioned: {0} tile(s) failed. First error: {1}
The failed tiles are saved in {2} with their error; fix the problem and run again with Resume.</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0} tile(s) failed (first error: {1}); see the error field, and run again with Resume to retry them</source>
        <translation>{0} tile(s) failed (first error: {1}); see the error field, and run again with Resume to retry them</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>These captions come from the DEMO model, trained on synthetic scenes only: they are not meaningful on real imagery. Serve a real CCExpert checkpoint for real work.</source>
        <translation>These captions come from the DEMO model, trained on synthetic scenes only: they are not meaningful on real imagery. Serve a real CCExpert checkpoint for real work.</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>The backend has no /v1/auth/check (older version): the first batch checks the key</source>
        <translation>The backend has no /v1/auth/check (older version): the first batch checks the key</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Backend {0}: model {1} {2}, chips {3} px, device {4}{5}</source>
        <translation>Backend {0}: model {1} {2}, chips {3} px, device {4}{5}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source> (DEMO model: synthetic scenes only)</source>
        <translation> (DEMO model: synthetic scenes only)</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Resuming {0} although it was made by another run: {1}</source>
        <translation>Resuming {0} although it was made by another run: {1}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Resuming: {0} tile(s) already captioned in {1}</source>
        <translation>Resuming: {0} tile(s) already captioned in {1}</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>This run needs {0} chips, more than the {1} of "Ask before runs of more chips than". Choose a smaller area of interest or a larger chip size, or raise that limit.</source>
        <translation>This run needs {0} chips, more than the {1} of "Ask before runs of more chips than". Choose a smaller area of interest or a larger chip size, or raise that limit.</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0} requests of up to {1} chip pairs at the backend at once</source>
        <translation>{0} requests of up to {1} chip pairs at the backend at once</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0}
Nothing was captioned and nothing is kept; fix the key and run again.</source>
        <translation>{0}
Nothing was captioned and nothing is kept; fix the key and run again.</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>Canceled: {0} tile(s) are saved in {1}; run again with Resume to continue</source>
        <translation>Canceled: {0} tile(s) are saved in {1}; run again with Resume to continue</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>{0}
{1} tile(s) are saved in {2}; fix the problem and run again with Resume.</source>
        <translation>{0}
{1} tile(s) are saved in {2}; fix the problem and run again with Resume.</translation>
    </message>
    <message>
        <location filename="../algorithm.py"/>
        <source>No tile was captioned: {0} tile(s) failed. First error: {1}
{2} was left as it was; fix the problem and run again.</source>
        <translation>No tile was captioned: {0} tile(s) failed. First error: {1}
{2} was left as it was; fix the problem and run again.</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>BEFORE and AFTER rasters do not overlap (BEFORE {0}, AFTER {1} in the BEFORE CRS); pick a co-registered pair of the same place</source>
        <translation>BEFORE and AFTER rasters do not overlap (BEFORE {0}, AFTER {1} in the BEFORE CRS); pick a co-registered pair of the same place</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The extent {0} does not overlap the area covered by both rasters ({1}, Before CRS)</source>
        <translation>The extent {0} does not overlap the area covered by both rasters ({1}, Before CRS)</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The area of interest does not intersect the area where BEFORE and AFTER overlap</source>
        <translation>The area of interest does not intersect the area where BEFORE and AFTER overlap</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>Canceled.</source>
        <translation>Canceled.</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The area of interest, feature {0}, has a coordinate that is not a number: fix or remove that vertex</source>
        <translation>The area of interest, feature {0}, has a coordinate that is not a number: fix or remove that vertex</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The area of interest, feature {0}, is not a valid polygon ({1}): repaired, keeping every part it encloses (area {2:.6g} in its CRS units)</source>
        <translation>The area of interest, feature {0}, is not a valid polygon ({1}): repaired, keeping every part it encloses (area {2:.6g} in its CRS units)</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The area of interest has no polygon (no features, or none selected)</source>
        <translation>The area of interest has no polygon (no features, or none selected)</translation>
    </message>
    <message>
        <location filename="../area.py"/>
        <source>The area of interest cannot be projected into the BEFORE raster's CRS ({0})</source>
        <translation>The area of interest cannot be projected into the BEFORE raster's CRS ({0})</translation>
    </message>
    <message>
        <location filename="../area_layer.py"/>
        <source>{0} has no readable layer {1}</source>
        <translation>{0} has no readable layer {1}</translation>
    </message>
    <message>
        <location filename="../area_layer.py"/>
        <source>Could not write the change areas into {0}: {1}</source>
        <translation>Could not write the change areas into {0}: {1}</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>Backend URL must start with http:// or https://, got {0!r}</source>
        <translation>Backend URL must start with http:// or https://, got {0!r}</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>{0} answered /v1/info without CCExpert service information: is this a CCExpert backend?</source>
        <translation>{0} answered /v1/info without CCExpert service information: is this a CCExpert backend?</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend at {0} speaks API version {1}; this plugin needs version {2}. Update the plugin or the backend.</source>
        <translation>The backend at {0} speaks API version {1}; this plugin needs version {2}. Update the plugin or the backend.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend answered /v1/captions with an unexpected body.</source>
        <translation>The backend answered /v1/captions with an unexpected body.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend answered without results for {0} chip(s).</source>
        <translation>The backend answered without results for {0} chip(s).</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>{0} (gave up after {1} attempts: retry budget of {2:g} s spent)</source>
        <translation>{0} (gave up after {1} attempts: retry budget of {2:g} s spent)</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>{0}; retrying in {1:.1f} s (attempt {2}, {3:.0f} s of the retry budget left)</source>
        <translation>{0}; retrying in {1:.1f} s (attempt {2}, {3:.0f} s of the retry budget left)</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend at {0} did not answer {1} within {2:.0f} s; it may be overloaded or the batch too large for its device.</source>
        <translation>The backend at {0} did not answer {1} within {2:.0f} s; it may be overloaded or the batch too large for its device.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend at {0} is up but its model cannot caption: {1}. Check the backend's log and restart it with a working model.</source>
        <translation>The backend at {0} is up but its model cannot caption: {1}. Check the backend's log and restart it with a working model.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend answered HTTP {0}: {1}</source>
        <translation>The backend answered HTTP {0}: {1}</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend refused the API key (HTTP {0}: {1}). Set the key in the CCExpert settings or pick the right AUTHCFG.</source>
        <translation>The backend refused the API key (HTTP {0}: {1}). Set the key in the CCExpert settings or pick the right AUTHCFG.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>{0} has no CCExpert API at {1} (HTTP {2}); check the backend URL and versions.</source>
        <translation>{0} has no CCExpert API at {1} (HTTP {2}); check the backend URL and versions.</translation>
    </message>
    <message>
        <location filename="../backend_client.py"/>
        <source>The backend rejected the request (HTTP {0}): {1}</source>
        <translation>The backend rejected the request (HTTP {0}): {1}</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>This run will send {0} to the backend (more than the limit of {1} you set in '{2}'). Continue?</source>
        <translation>This run will send {0} to the backend (more than the limit of {1} you set in '{2}'). Continue?</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>acquired {0}</source>
        <translation>acquired {0}</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>file modified {0}</source>
        <translation>file modified {0}</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>not a local file</source>
        <translation>not a local file</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>The pixel size does not suit the model.</source>
        <translation>The pixel size does not suit the model.</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>Use {0} px chips</source>
        <translation>Use {0} px chips</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>Run with {0} px chips</source>
        <translation>Run with {0} px chips</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>{0} captioned, {1} changed, {2} errors, {3} skipped (nodata)</source>
        <translation>{0} captioned, {1} changed, {2} errors, {3} skipped (nodata)</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>demo model</source>
        <translation>demo model</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>Captions come from the demo model: it only knows synthetic scenes, so captions of real imagery are not meaningful. Point the CCExpert settings at a backend with a real model for real imagery.</source>
        <translation>Captions come from the demo model: it only knows synthetic scenes, so captions of real imagery are not meaningful. Point the CCExpert settings at a backend with a real model for real imagery.</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>pixel size off</source>
        <translation>pixel size off</translation>
    </message>
    <message>
        <location filename="../dialog.py"/>
        <source>CCExpert</source>
        <translation>CCExpert</translation>
    </message>
    <message>
        <location filename="../layer_style.py"/>
        <source>Could not apply the change caption style: {0}</source>
        <translation>Could not apply the change caption style: {0}</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>OUTPUT {0} is the {1} ({2}); an input is never overwritten. Choose another OUTPUT file.</source>
        <translation>OUTPUT {0} is the {1} ({2}); an input is never overwritten. Choose another OUTPUT file.</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>OUTPUT {0} is a directory; give the path of a .gpkg file</source>
        <translation>OUTPUT {0} is a directory; give the path of a .gpkg file</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>OUTPUT must be a GeoPackage (.gpkg) file, got {0}</source>
        <translation>OUTPUT must be a GeoPackage (.gpkg) file, got {0}</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Cannot create the GeoPackage {0} (next to {1})</source>
        <translation>Cannot create the GeoPackage {0} (next to {1})</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} is not a GeoPackage that can be opened for writing</source>
        <translation>Resume: {0} is not a GeoPackage that can be opened for writing</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Cannot write tile {0} to {1}</source>
        <translation>Cannot write tile {0} to {1}</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} is damaged ({1}); it cannot be continued. Choose a new output file or switch Resume off to replace it.</source>
        <translation>Resume: {0} is damaged ({1}); it cannot be continued. Choose a new output file or switch Resume off to replace it.</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} has no layer {1}; choose another output file</source>
        <translation>Resume: {0} has no layer {1}; choose another output file</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: layer {0} in {1} lacks the fields {2}; choose another output file</source>
        <translation>Resume: layer {0} in {1} lacks the fields {2}; choose another output file</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} holds tiles of another chip grid (tile {1}); the rasters, chip size or overlap changed. Choose a new output file or switch Resume off.</source>
        <translation>Resume: {0} holds tiles of another chip grid (tile {1}); the rasters, chip size or overlap changed. Choose a new output file or switch Resume off.</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} cannot be checked: {1}. Choose a new output file or switch Resume off; tick "Resume even if the output was made from other inputs" only when you know it was made from these inputs.</source>
        <translation>Resume: {0} cannot be checked: {1}. Choose a new output file or switch Resume off; tick "Resume even if the output was made from other inputs" only when you know it was made from these inputs.</translation>
    </message>
    <message>
        <location filename="../output.py"/>
        <source>Resume: {0} was made by another run: {1}. Choose a new output file or switch Resume off; tick "Resume even if the output was made from other inputs" only when the tiles done so far still hold (e.g. the same pixels re-exported).</source>
        <translation>Resume: {0} was made by another run: {1}. Choose a new output file or switch Resume off; tick "Resume even if the output was made from other inputs" only when the tiles done so far still hold (e.g. the same pixels re-exported).</translation>
    </message>
    <message>
        <location filename="../planning.py"/>
        <source>Context note: {0}</source>
        <translation>Context note: {0}</translation>
    </message>
    <message>
        <location filename="../planning.py"/>
        <source>{0} raster is missing or cannot be loaded</source>
        <translation>{0} raster is missing or cannot be loaded</translation>
    </message>
    <message>
        <location filename="../planning.py"/>
        <source>{0} raster must be a GDAL-readable file, not a {1} layer</source>
        <translation>{0} raster must be a GDAL-readable file, not a {1} layer</translation>
    </message>
    <message>
        <location filename="../planning.py"/>
        <source>Before and After are the same raster ({0}): nothing can have changed. Pick the earlier image as Before and the later one as After.</source>
        <translation>Before and After are the same raster ({0}): nothing can have changed. Pick the earlier image as Before and the later one as After.</translation>
    </message>
    <message>
        <location filename="../planning.py"/>
        <source>The area of interest covers no chip of the BEFORE raster</source>
        <translation>The area of interest covers no chip of the BEFORE raster</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>&amp;CCExpert</source>
        <translation>&amp;CCExpert</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>Caption what changed between a before and an after raster (CCExpert backend)</source>
        <translation>Caption what changed between a before and an after raster (CCExpert backend)</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>Create report…</source>
        <translation>Create report…</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>HTML report of a change-captions layer: dates, overview, before/after of each change</source>
        <translation>HTML report of a change-captions layer: dates, overview, before/after of each change</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>Settings…</source>
        <translation>Settings…</translation>
    </message>
    <message>
        <location filename="../plugin.py"/>
        <source>Help</source>
        <translation>Help</translation>
    </message>
    <message>
        <location filename="../provider.py"/>
        <source>CCExpert change captioning</source>
        <translation>CCExpert change captioning</translation>
    </message>
    <message>
        <location filename="../provider.py"/>
        <source>CCExpert change captioning {0}</source>
        <translation>CCExpert change captioning {0}</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>{0} raster cannot be opened by GDAL ({1}): {2}</source>
        <translation>{0} raster cannot be opened by GDAL ({1}): {2}</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>{0} raster has no coordinate reference system; assign one first</source>
        <translation>{0} raster has no coordinate reference system; assign one first</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>{0} raster: {1}</source>
        <translation>{0} raster: {1}</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>BANDS must name three bands (R, G, B) or one (grey), got {0}: {1}</source>
        <translation>BANDS must name three bands (R, G, B) or one (grey), got {0}: {1}</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>{0} raster has {1} band(s); band {2} does not exist</source>
        <translation>{0} raster has {1} band(s); band {2} does not exist</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>BEFORE raster is south-up; resampling AFTER onto it is not supported</source>
        <translation>BEFORE raster is south-up; resampling AFTER onto it is not supported</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>AFTER raster cannot be resampled onto the BEFORE grid: {0}</source>
        <translation>AFTER raster cannot be resampled onto the BEFORE grid: {0}</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>AFTER raster resampled onto the BEFORE pixel grid ({0}; bilinear, read lazily per chip)</source>
        <translation>AFTER raster resampled onto the BEFORE pixel grid ({0}; bilinear, read lazily per chip)</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>The area of interest does not cover any pixel of the BEFORE raster</source>
        <translation>The area of interest does not cover any pixel of the BEFORE raster</translation>
    </message>
    <message>
        <location filename="../reader.py"/>
        <source>{0} raster read failed at pixel ({1}, {2}): {3}</source>
        <translation>{0} raster read failed at pixel ({1}, {2}): {3}</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>The ccexpert command {0} is not an executable file</source>
        <translation>The ccexpert command {0} is not an executable file</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Creating the report needs the ccexpert command (the backend's Python package: pip install ccexpert, which brings rasterio and Pillow) on this computer: install it, or give its ccexpert executable in the 'ccexpert command' parameter</source>
        <translation>Creating the report needs the ccexpert command (the backend's Python package: pip install ccexpert, which brings rasterio and Pillow) on this computer: install it, or give its ccexpert executable in the 'ccexpert command' parameter</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>{0} is not a change-captions layer (a GeoPackage made by Describe changes)</source>
        <translation>{0} is not a change-captions layer (a GeoPackage made by Describe changes)</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Create report</source>
        <translation>Create report</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>A self-contained HTML page of a change-captions layer: the rasters' dates, an overview map with the area of interest, a before/after swipe for each changed tile and a table of all tiles. Made by the ccexpert report command of the backend package, which must be installed on this computer.</source>
        <translation>A self-contained HTML page of a change-captions layer: the rasters' dates, an overview map with the area of interest, a before/after swipe for each changed tile and a table of all tiles. Made by the ccexpert report command of the backend package, which must be installed on this computer.</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Change captions layer</source>
        <translation>Change captions layer</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Report</source>
        <translation>Report</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>HTML files (*.html)</source>
        <translation>HTML files (*.html)</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Most changed tiles shown with imagery</source>
        <translation>Most changed tiles shown with imagery</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>ccexpert command (empty: found on PATH)</source>
        <translation>ccexpert command (empty: found on PATH)</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Open the report when done</source>
        <translation>Open the report when done</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>The change captions layer is missing</source>
        <translation>The change captions layer is missing</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>The report would replace the layer's own GeoPackage; pick an .html file</source>
        <translation>The report would replace the layer's own GeoPackage; pick an .html file</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Running {0} {1}</source>
        <translation>Running {0} {1}</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>Could not start {0}: {1}</source>
        <translation>Could not start {0}: {1}</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>The report took over {0} s</source>
        <translation>The report took over {0} s</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>exit code {0}</source>
        <translation>exit code {0}</translation>
    </message>
    <message>
        <location filename="../report_algorithm.py"/>
        <source>The report could not be made: {0}</source>
        <translation>The report could not be made: {0}</translation>
    </message>
    <message>
        <location filename="../run_feedback.py"/>
        <source>Cannot count the rows of {0} ({1}): the counts are this run's</source>
        <translation>Cannot count the rows of {0} ({1}): the counts are this run's</translation>
    </message>
    <message>
        <location filename="../run_feedback.py"/>
        <source>The layer style or abstract could not be stored in {0}: {1}</source>
        <translation>The layer style or abstract could not be stored in {0}: {1}</translation>
    </message>
    <message>
        <location filename="../run_feedback.py"/>
        <source>{0} change area(s) written to layer change_areas</source>
        <translation>{0} change area(s) written to layer change_areas</translation>
    </message>
    <message>
        <location filename="../run_feedback.py"/>
        <source>Tile {0}: {1}</source>
        <translation>Tile {0}: {1}</translation>
    </message>
    <message>
        <location filename="../settings.py"/>
        <source>The QGIS authentication system is disabled: {0}</source>
        <translation>The QGIS authentication system is disabled: {0}</translation>
    </message>
    <message>
        <location filename="../settings.py"/>
        <source>Set the QGIS master password first (Settings &gt; Options &gt; Authentication).</source>
        <translation>Set the QGIS master password first (Settings &gt; Options &gt; Authentication).</translation>
    </message>
    <message>
        <location filename="../settings.py"/>
        <source>Could not store the API key in the QGIS authentication database.</source>
        <translation>Could not store the API key in the QGIS authentication database.</translation>
    </message>
    <message>
        <location filename="../settings.py"/>
        <source>Authentication configuration {0} was not found or could not be decrypted.</source>
        <translation>Authentication configuration {0} was not found or could not be decrypted.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>CCExpert settings</source>
        <translation>CCExpert settings</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>leave empty to keep the stored key</source>
        <translation>leave empty to keep the stored key</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>The Describe changes dialog asks before it sends more chips than this to the backend; scripts and qgis_process refuse such runs.</source>
        <translation>The Describe changes dialog asks before it sends more chips than this to the backend; scripts and qgis_process refuse such runs.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Test connection</source>
        <translation>Test connection</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Copy diagnostics</source>
        <translation>Copy diagnostics</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Versions, backend URL and model, last error, for a bug report; never the API key</source>
        <translation>Versions, backend URL and model, last error, for a bug report; never the API key</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Backend</source>
        <translation>Backend</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>API key</source>
        <translation>API key</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Runs</source>
        <translation>Runs</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>A key is stored in the QGIS authentication database.</source>
        <translation>A key is stored in the QGIS authentication database.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>No key stored: only a backend without API keys will answer.</source>
        <translation>No key stored: only a backend without API keys will answer.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>QGIS will now ask for its master password: it protects the API key in the QGIS authentication database. If none is set yet, the password you type becomes it.</source>
        <translation>QGIS will now ask for its master password: it protects the API key in the QGIS authentication database. If none is set yet, the password you type becomes it.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Connection failed: {0}</source>
        <translation>Connection failed: {0}</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>API key refused: {0}</source>
        <translation>API key refused: {0}</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>API key not checked: this backend has no /v1/auth/check (the first run checks it).</source>
        <translation>API key not checked: this backend has no /v1/auth/check (the first run checks it).</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>API key accepted</source>
        <translation>API key accepted</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>This backend needs no API key.</source>
        <translation>This backend needs no API key.</translation>
    </message>
    <message>
        <location filename="../settings_dialog.py"/>
        <source>Copied to the clipboard:</source>
        <translation>Copied to the clipboard:</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>{0} holds no run parameters (not made by Describe changes)</source>
        <translation>{0} holds no run parameters (not made by Describe changes)</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>The rasters of this layer cannot be read: {0}</source>
        <translation>The rasters of this layer cannot be read: {0}</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>The rasters at {0} are not the ones this layer was made from</source>
        <translation>The rasters at {0} are not the ones this layer was made from</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>Before</source>
        <translation>Before</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>After</source>
        <translation>After</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>Show before/after</source>
        <translation>Show before/after</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>{0} is not a change-captions layer</source>
        <translation>{0} is not a change-captions layer</translation>
    </message>
    <message>
        <location filename="../tile_view.py"/>
        <source>Row {0}, column {1}</source>
        <translation>Row {0}, column {1}</translation>
    </message>
</context>
</TS>
