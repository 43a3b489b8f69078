//! AWS's SigV4 test suite (service `service`, us-east-1, 20150830T123600Z): canonical request, string to sign, signature.

use super::*;


const SUITE_AK: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_DATE: &str = "20150830T123600Z";
const SUITE_SCOPE: &str = "20150830/us-east-1/service/aws4_request";

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    creq: &'static str,
    sts_hash: &'static str,
    signed_headers: &'static str,
    signature: &'static str,
}

const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", SUITE_DATE);

#[allow(clippy::too_many_arguments)]
fn v(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    creq: &'static str,
    sts_hash: &'static str,
    signed_headers: &'static str,
    signature: &'static str,
) -> Vector {
    Vector {
        name,
        method,
        path,
        query,
        headers,
        body,
        creq,
        sts_hash,
        signed_headers,
        signature,
    }
}

fn vectors() -> Vec<Vector> {
    vec![
        v("get-vanilla", "GET", "/", "", &[HOST, DATE], "",
          "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63", "host;x-amz-date",
          "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        v("get-vanilla-empty-query-key", "GET", "/", "Param1=value1", &[HOST, DATE], "",
          "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab", "host;x-amz-date",
          "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
        v("get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1", &[HOST, DATE], "",
          "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89", "host;x-amz-date",
          "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        v("get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", &[HOST, DATE], "",
          "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0", "host;x-amz-date",
          "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        v("get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", &[HOST, DATE], "",
          "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606", "host;x-amz-date",
          "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        v("get-vanilla-query-unreserved", "GET", "/",
          "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
          &[HOST, DATE], "",
          "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177", "host;x-amz-date",
          "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        v("get-vanilla-utf8-query", "GET", "/", "\u{1234}=bar", &[HOST, DATE], "",
          "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073", "host;x-amz-date",
          "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        v("get-vanilla-query-order-encoded", "GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1", &[HOST, DATE], "",
          "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71", "host;x-amz-date",
          "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"),
        v("get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "", &[HOST, DATE], "",
          "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9", "host;x-amz-date",
          "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        v("get-utf8", "GET", "/\u{1234}", "", &[HOST, DATE], "",
          "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102", "host;x-amz-date",
          "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
        v("get-space", "GET", "/example space/", "", &[HOST, DATE], "",
          "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86", "host;x-amz-date",
          "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        v("get-header-key-duplicate", "GET", "/", "",
          &[HOST, ("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1"), DATE], "",
          "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c", "host;my-header1;x-amz-date",
          "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        v("get-header-value-order", "GET", "/", "",
          &[HOST, ("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"), ("My-Header1", "value2"), DATE], "",
          "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86", "host;my-header1;x-amz-date",
          "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        v("get-header-value-trim", "GET", "/", "",
          &[HOST, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), DATE], "",
          "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7", "host;my-header1;my-header2;x-amz-date",
          "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        v("post-header-key-case", "POST", "/", "", &[HOST, DATE], "",
          "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87", "host;x-amz-date",
          "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        v("post-header-key-sort", "POST", "/", "", &[HOST, ("My-Header1", "value1"), DATE], "",
          "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65", "host;my-header1;x-amz-date",
          "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
        v("post-header-value-case", "POST", "/", "", &[HOST, ("My-Header1", "VALUE1"), DATE], "",
          "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93", "host;my-header1;x-amz-date",
          "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        v("post-vanilla-query", "POST", "/", "Param1=value1", &[HOST, DATE], "",
          "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd", "host;x-amz-date",
          "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        // The suite's request also carries Content-Length: 13, which it leaves unsigned.
        v("post-x-www-form-urlencoded-parameters", "POST", "/", "",
          &[("Content-Type", "application/x-www-form-urlencoded; charset=utf8"), HOST, DATE],
          "Param1=value1",
          "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; charset=utf8\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
          "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c", "content-type;host;x-amz-date",
          "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
        v("post-x-www-form-urlencoded", "POST", "/", "",
          &[("Content-Type", "application/x-www-form-urlencoded"), HOST, DATE],
          "Param1=value1",
          "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
          "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281", "content-type;host;x-amz-date",
          "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
        v("post-sts-header-before", "POST", "/", "",
          &[HOST, DATE, ("X-Amz-Security-Token", "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==")],
          "",
          "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6", "host;x-amz-date;x-amz-security-token",
          "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ]
}

#[test]
fn aws_sigv4_test_suite() {
    for vec in vectors() {
        let query = decode_query(vec.query).unwrap();
        let headers = owned(vec.headers);
        let uri = canonical_uri(vec.path).unwrap();
        let payload = sha256_hex(vec.body.as_bytes());
        let req = SignRequest {
            method: vec.method,
            canonical_uri: &uri,
            query: &query,
            headers: &headers,
            payload_hash: &payload,
            access_key_id: SUITE_AK,
            secret_access_key: SUITE_SECRET,
            region: "us-east-1",
            service: "service",
            amz_date: SUITE_DATE,
        };
        let creq = canonical_request(&req);
        assert_eq!(creq, vec.creq, "{}: canonical request", vec.name);
        assert_eq!(
            string_to_sign(SUITE_DATE, SUITE_SCOPE, &creq),
            format!(
                "AWS4-HMAC-SHA256\n{SUITE_DATE}\n{SUITE_SCOPE}\n{}",
                vec.sts_hash
            ),
            "{}: string to sign",
            vec.name
        );
        assert_eq!(
            sign_headers(&req),
            format!(
                "AWS4-HMAC-SHA256 Credential={SUITE_AK}/{SUITE_SCOPE}, SignedHeaders={}, Signature={}",
                vec.signed_headers, vec.signature
            ),
            "{}: authorization",
            vec.name
        );
    }
}
